"""Version of the compute engine: part of every job's identity, so a change of numerics reruns."""

ENGINE_VERSION = "1"
