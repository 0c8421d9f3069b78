"""Reads of webhook endpoints."""

import uuid

from webhooks.models import Endpoint


def endpoint_list() -> list[Endpoint]:
    """Every endpoint, oldest first."""
    return list(Endpoint.objects.all())


def endpoint_get(*, endpoint_id: uuid.UUID) -> Endpoint:
    """One endpoint; raises Endpoint.DoesNotExist."""
    return Endpoint.objects.get(pk=endpoint_id)
