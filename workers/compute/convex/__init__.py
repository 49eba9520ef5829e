"""Exact convex training of two-layer nets: the SDP and group-lasso programs and the nets
recovered from them (`programs`, `recovery`), the SDP's block spectra and ranks (`tightness`),
ReLU activation patterns (`patterns`), nonconvex training on the same objective (`nonconvex`,
`starts`, `compare`, `lbfgs`), and the `convex` experiment (`experiment`)."""
