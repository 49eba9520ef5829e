"""Version of the compute engine: part of every job's identity, so a change of numerics reruns."""

ENGINE_VERSION = "2"
"""2: a train run checks its tolerance at every step (or once per pass over the data), not at
record steps only, so its `steps` and final weights can differ from version 1's."""
