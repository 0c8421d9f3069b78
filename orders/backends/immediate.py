"""ImmediateBackend: each order is processed inline, right after its commit (tests and scripts)."""

import time
from datetime import datetime
from uuid import UUID

from django.utils import timezone

from orders.backends import BaseBackend
from orders.processing import attempt_order


class ImmediateBackend(BaseBackend):
    """The order is final when the request that placed it returns, retries included; there is no recovery sweep."""

    def enqueue(self, order_id: UUID, *, not_before: datetime | None = None) -> None:
        if not_before is not None:
            time.sleep(max(0.0, (not_before - timezone.now()).total_seconds()))
        attempt_order(order_id)
