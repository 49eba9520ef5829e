"""The Celery application: Redis broker, explicit queues, late acks, redelivery of lost work.

The store holds results, so Celery keeps none. The API imports this module to send tasks and
must stay free of torch: tasks are sent by name, and the worker's app instance lives in
workers.tasks, which only workers load.
"""

from celery import Celery
from kombu import Queue

from workers.settings import Settings

QUEUES = ("cpu", "gpu")
SWEEP_QUEUE = "sweep"
"""The `queue` a sweep's parent job is stored with: it is never sent, only its children are."""
RUN_JOB = "ntkdyn.run_job"


def send_job(celery: Celery, job_id: str, queue: str) -> None:
    """Queue the run of a stored job; its id is the task id, so the broker holds one per job."""
    celery.send_task(RUN_JOB, args=[job_id], task_id=job_id, queue=queue)


def queue_for(device: str) -> str:
    """GPU work goes to the `gpu` queue, everything else to `cpu`."""
    return "gpu" if device == "cuda" else "cpu"


def make_celery(settings: Settings) -> Celery:
    app = Celery("ntkdyn", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in QUEUES],
        task_create_missing_queues=False,
        task_default_queue="cpu",
        task_soft_time_limit=settings.max_job_seconds,
        task_time_limit=settings.max_job_seconds + 30,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        # task events for Flower on the broker: on Redis, pub/sub messages that no one keeps
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
    )
    return app
