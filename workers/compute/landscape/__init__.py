"""Loss landscapes of ReLU teacher-student nets: the population and sample losses (`loss`),
critical-point search and classification (`critical_points`), symmetry (`symmetry`),
symmetry-induced embeddings of wider nets (`embedding`), and the `landscape` experiment
(`experiment`)."""
