"""The HTTP face of ntkdyn: FastAPI app, embedded launcher and CLI. Never imports torch."""
