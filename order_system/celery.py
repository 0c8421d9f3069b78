"""The Celery app for ORDER_QUEUE_BACKEND=celery, after Celery's Django recipe: configured by CELERY_* settings."""

import os

from celery import Celery
from django.db import DatabaseError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "order_system.settings")

# Every task's options. Acknowledged only after it ran, and given back if the worker process dies, so a killed worker's
# task is delivered again; the task's conditional claim turns a second delivery of work claimed or finished into a
# no-op. A database that is briefly unreachable is waited out here instead of leaving the work to a sweep.
DURABLE_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "max_retries": 8,
}

app = Celery("order_system")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
