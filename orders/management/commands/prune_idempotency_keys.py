"""Delete idempotency keys older than ORDER_IDEMPOTENCY_KEY_TTL_HOURS (at least 24 h)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.services import idempotency_keys_prune


class Command(BaseCommand):
    """Run it from cron or a scheduler; keys are only needed while clients may still retry."""

    help = "Delete idempotency keys older than ORDER_IDEMPOTENCY_KEY_TTL_HOURS."

    def handle(self, *args, **options):
        deleted = idempotency_keys_prune(older_than=timedelta(hours=settings.ORDER_IDEMPOTENCY_KEY_TTL_HOURS))
        self.stdout.write(f"Deleted {deleted} idempotency keys.")
