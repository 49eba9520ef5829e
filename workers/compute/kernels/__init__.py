"""Tangent kernels: closed forms of the infinite-width limits (`analytic`), finite-width kernels
of drawn networks (`empirical`), kernel ridge regression (`regression`), and the `kernel`
experiment that studies them (`experiment`)."""
