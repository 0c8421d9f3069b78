"""make bench's auth section: the CPU a create spends authenticating, by scheme, against the open API.

    python -m benchmarks.auth BODY_FILE --requests N [--own-tokens]   (benchmarks/bench.py runs it, on fresh databases)

POST /api/orders/ through Django's own handler, as benchmarks/idioms.py measures it, with the API closed by the
environment bench.py gives (API_TOKENS, API_AUTH=jwt). The variants take turns request by request: "open" swaps the
views' authentication and permissions out, as on an open API; "service_token" sends one of API_TOKENS; "jwt_rs256"
and "jwt_es256" a provider's tokens, its JWKS served by this process on 127.0.0.1 (the keys cached after the first
fetch); with --own-tokens, "jwt_hs256" instead, a token the service signed for a user of its own, whose row is read
on each request. Prints each variant's median CPU µs of a create as JSON.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from tests.jwks import Provider

PROVIDER = Provider().start()
if "--own-tokens" not in sys.argv:
    os.environ.update(PROVIDER.env())  # before Django reads its settings

from benchmarks.idioms import create_cpu_us, take_turns  # noqa: E402 - sets Django up

# isort: split
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework.views import APIView  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", type=Path, help="the order to post, as JSON")
    parser.add_argument("--requests", type=int, default=1_000, help="timed creates per variant")
    parser.add_argument("--own-tokens", action="store_true", help="the service signs tokens; no provider")
    args = parser.parse_args()
    body = args.body.read_text()
    user = json.loads(body)["user_id"]  # each token's user places the order for itself
    tokens = {"service_token": settings.API_TOKENS[0]}
    if args.own_tokens:
        tokens["jwt_hs256"] = str(AccessToken.for_user(User.objects.create_user(user)))
    else:
        expires = int(time.time()) + 3600  # outlasts the run
        tokens |= {
            "jwt_rs256": PROVIDER.token(user, kid="rsa-1", exp=expires),
            "jwt_es256": PROVIDER.token(user, kid="ec-1", exp=expires),
        }

    def create_as(token: str) -> Callable[[], float]:
        client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
        return lambda: create_cpu_us(client, body)

    open_client = Client(HTTP_HOST="127.0.0.1")

    def create_open() -> float:
        with (
            mock.patch.object(APIView, "authentication_classes", []),
            mock.patch.object(APIView, "permission_classes", []),
        ):
            return create_cpu_us(open_client, body)

    variants = {"open": create_open, "open_again": create_open} | {
        name: create_as(token) for name, token in tokens.items()
    }
    print(json.dumps(take_turns(variants, args.requests)))
    PROVIDER.stop()


if __name__ == "__main__":
    main()
