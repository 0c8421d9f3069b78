"""One attempt's request, the same from the in-process sender and from a Celery task: signed, POSTed, timed."""

import asyncio

import httpx
from django.utils import timezone

from webhooks.services import Attempt, Outcome, is_success
from webhooks.signing import signature_headers


async def post_attempt(client: httpx.AsyncClient, attempt: Attempt, *, timeout: float) -> Outcome:
    """How the attempt went: the endpoint's status code, or None and why there was none; the body is never read.

    The timeout bounds the whole request, not each read, so an attempt always ends within its lease.
    """
    headers = signature_headers(
        message_id=attempt.message_id, body=attempt.body, signing_secrets=attempt.signing_secrets, at=timezone.now()
    )
    try:
        async with asyncio.timeout(timeout):
            request = client.stream(
                "POST",
                attempt.url,
                content=attempt.body.encode(),
                headers={"content-type": "application/json", **headers},
            )
            async with request as response:
                code = response.status_code
                return Outcome(attempt, code, "" if is_success(code) else f"HTTP {code}")
    except TimeoutError:
        return Outcome(attempt, None, f"No response within {timeout:g} s.")
    except Exception as exc:  # refused, reset, a forbidden address, a bad URL: an attempt that failed
        return Outcome(attempt, None, f"{type(exc).__name__}: {exc}")
