"""make bench's idioms section: each shortcut of the create view against the Django or DRF idiom it stands in for.

    python -m benchmarks.idioms BODY_FILE --requests N   (benchmarks/bench.py runs it, on a fresh database)

POST /api/orders/ through Django's own handler (django.test.Client: the production settings and middleware, no
server), each request either as shipped or with one idiom swapped into orders.apis by name. The variants take turns
request by request, in a new order each round, so a neighbour's load falls on all of them alike; each figure is the
median CPU time this thread spent on a create, in µs. The shipped code is measured twice: the difference between the
two is what the run can't resolve. Prints the medians as JSON.
"""

import argparse
import contextlib
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import django

django.setup()

from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from rest_framework import serializers  # noqa: E402

from orders import apis  # noqa: E402
from orders.serializers import OrderCreateInputSerializer, OrderOutputSerializer  # noqa: E402


def location_by_reverse(path: str) -> str:
    """The idiom for the hand-built Location: reverse() the order's URL from its id, the last part of that path."""
    return reverse("orders:detail", kwargs={"order_id": path.rsplit("/", 2)[1]})


def validated_by_a_new_serializer(data: dict) -> dict:
    """The idiom: a serializer made for the request, is_valid(), validated_data."""
    serializer = OrderCreateInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class DateTimeFieldOrderSerializer(OrderOutputSerializer):
    """The output serializer with DRF's own DateTimeField, which renders in the current time zone (UTC here)."""

    serializer_field_mapping = serializers.ModelSerializer.serializer_field_mapping


# Each shortcut of OrderCreateApi.post (orders/apis.py): the names it calls there, replaced by its idiom. A name the
# module no longer has stops the run (mock.patch.object), rather than measuring nothing.
IDIOMS = {
    "location": {"escape_uri_path": location_by_reverse},
    "input_serializer": {"order_create_input": validated_by_a_new_serializer},
    "output_serializer": {"order_output": lambda order: OrderOutputSerializer(order).data},
    "utc_datetime": {"order_output": DateTimeFieldOrderSerializer().to_representation},
}
VARIANTS = {"shipped": {}, "shipped_again": {}, **IDIOMS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", type=Path, help="the order to post, as JSON")
    parser.add_argument("--requests", type=int, default=1_000, help="timed creates per variant")
    args = parser.parse_args()
    print(json.dumps(measure(args.body.read_text(), args.requests)))


def measure(body: str, requests: int) -> dict[str, float]:
    """The median CPU µs of a create for each variant, the variants taking turns request by request."""
    client = Client(HTTP_HOST="127.0.0.1")

    def create_with(idioms: dict) -> Callable[[], float]:
        def create() -> float:
            with contextlib.ExitStack() as swapped:
                for name, idiom in idioms.items():
                    swapped.enter_context(mock.patch.object(apis, name, idiom))
                return create_cpu_us(client, body)

        return create

    return take_turns({variant: create_with(idioms) for variant, idioms in VARIANTS.items()}, requests)


def take_turns(variants: dict[str, Callable[[], float]], requests: int) -> dict[str, float]:
    """The median of each variant's figure over `requests` runs, the variants taking turns in a new order each round."""
    for _ in range(50):  # the first requests load code and fill caches
        for run in variants.values():
            run()
    gc.collect()
    gc.freeze()  # as each server process does once loaded (order_system/wsgi.py)
    spent: dict[str, list[float]] = {variant: [] for variant in variants}
    order = list(variants)
    for _ in range(requests):
        random.shuffle(order)
        for variant in order:
            spent[variant].append(variants[variant]())
    return {variant: statistics.median(figures) for variant, figures in spent.items()}


def create_cpu_us(client: Client, body: str) -> float:
    """One POST /api/orders/: the CPU time this thread spent on it, in µs (the create's write included)."""
    started = time.thread_time_ns()
    response = client.post("/api/orders/", body, content_type="application/json")
    spent = time.thread_time_ns() - started
    if response.status_code != 201:
        raise RuntimeError(f"a create answered {response.status_code}: {response.content[:200]!r}")
    return spent / 1000


if __name__ == "__main__":
    main()
