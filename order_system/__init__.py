# Celery's Django recipe: load the app with Django, so that @shared_task binds to it and enqueue_order can publish.
from order_system.celery import app as celery_app

__all__ = ("celery_app",)
