"""Loss landscapes of ReLU teacher-student nets: the population and sample losses (`loss`),
the problem and its seeded starts (`problem`), critical-point search and classification
(`critical_points`), symmetry (`symmetry`), the census in chunks (`census`) with each class's
frequency and exact interval (`frequency`), symmetry-induced embeddings of wider nets
(`embedding`), and the `landscape` experiment (`experiment`)."""
