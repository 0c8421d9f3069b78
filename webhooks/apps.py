"""App config for webhooks; the sender is started by the thread backend, with the order worker."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhooks app."""

    name = "webhooks"
