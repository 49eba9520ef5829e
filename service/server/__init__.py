"""The ntkdyn API server: the FastAPI app, the embedded launcher that runs the whole stack, and
the settings only they read. Imports fastapi and the workers' Celery app and store; never torch."""
