"""Delete webhook deliveries that succeeded more than WEBHOOK_RETENTION_DAYS ago."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from webhooks.services import deliveries_prune


class Command(BaseCommand):
    """Run it from cron or a scheduler: every event makes a row per endpoint, kept until it is pruned."""

    help = "Delete webhook deliveries that succeeded more than WEBHOOK_RETENTION_DAYS ago, and uncount them."

    def handle(self, *args, **options):
        deleted = deliveries_prune(older_than=timedelta(days=settings.WEBHOOK_RETENTION_DAYS))
        self.stdout.write(f"Deleted {deleted} webhook deliveries.")
