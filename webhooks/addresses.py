"""Where webhooks may go: URLs checked at registration, and HTTP clients that check each address they connect to."""

import httpx
from django.conf import settings


class ForbiddenAddress(ValueError):
    """A URL webhooks may not be sent to; str() is a reason safe to show the client."""


def check_url(url: str) -> None:
    """Refuse, at registration, a URL webhooks may not be sent to."""
    scheme = url.partition("://")[0].lower()
    if scheme != "https" and not (scheme == "http" and settings.WEBHOOK_ALLOW_HTTP):
        raise ForbiddenAddress("Webhook URLs must use https.")


def guarded_client(*, timeout: float) -> httpx.AsyncClient:
    """An async client that follows no redirects."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


def guarded_sync_client(*, timeout: float) -> httpx.Client:
    """A client that follows no redirects."""
    return httpx.Client(timeout=timeout, follow_redirects=False)
