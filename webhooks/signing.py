"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers each attempt carries."""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook


def new_secret() -> str:
    """A signing secret as the specification writes it: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_headers(*, message_id: str, body: str, signing_secrets: list[str], at: datetime) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature, with one v1 signature per secret, space-separated.

    The timestamp is the attempt's, not the event's: receivers refuse a timestamp more than 5 minutes off, and a retry
    may come hours later.
    """
    signatures = [Webhook(secret).sign(message_id, at, body) for secret in signing_secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
