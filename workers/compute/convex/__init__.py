"""Exact convex training of two-layer nets: the SDP and group-lasso programs and the nets
recovered from them (`programs`), ReLU activation patterns (`patterns`), nonconvex training on
the same objective (`compare`), and the `convex` experiment (`experiment`)."""
