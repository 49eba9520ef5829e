"""Celery app, tasks and the job store; the science lives in workers.compute."""
