"""The Celery app for ORDER_QUEUE_BACKEND=celery, after Celery's Django recipe: configured by CELERY_* settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "order_system.settings")

app = Celery("order_system")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
