"""Continuous-time limits of GD, heavy ball and Nesterov: the flows and their exact and
integrated solutions (`flows`), their discrete methods (`discrete`), the finite network beside
them (`network`), parameter-space flows of finite nets (`parameter_space`), continuous-time
rates (`rates`), and the `ode` experiment (`experiment`)."""
