"""Webhooks from a real server (granian, as `make run`), to receivers on 127.0.0.1: registered through the API, sent by
the server's own processes, and resumed after a kill -9."""

import signal
import threading

from tests.helpers import place_orders, request, wait_for

# Receivers run on 127.0.0.1 over plain http; retries come fast.
WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
    "WEBHOOK_RETRY_BACKOFF_SECONDS": "0.1",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
}
LIFECYCLE = ["order.created", "order.processing", "order.completed"]


def register(server, receiver) -> None:
    status, endpoint = request(server.url, "POST", "/api/webhooks/", {"url": receiver.url, "events": ["*"]})
    assert status == 201
    receiver.secrets.append(endpoint["secret"])


def lifecycles(received) -> dict[str, list[str]]:
    """Each order's event types, in the order the receiver accepted them, each webhook-id once."""
    seen: set[str] = set()
    by_order: dict[str, list[str]] = {}
    for request_ in received:
        if request_.message_id not in seen:
            seen.add(request_.message_id)
            by_order.setdefault(request_.event["data"]["order_id"], []).append(request_.event["type"])
    return by_order


def test_a_server_sends_each_orders_created_processing_completed_signed_and_in_order(processes, receiver):
    server = processes(**WEBHOOK_ENV)
    register(server, receiver)

    order_ids = place_orders(server, 20)

    received = wait_for(receiver.succeeded, until=lambda got: len(got) == 60, timeout=60)
    assert receiver.unverified == []
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
    assert len({request_.message_id for request_ in received}) == 60


def test_after_a_kill_9_mid_delivery_a_restarted_server_sends_every_event(processes, receivers):
    # Until the server is killed the receiver holds every request, then refuses it: each 2xx is the restarted server's.
    killed = threading.Event()
    receiver = receivers(lambda attempt, event: 200 if killed.is_set() else (503, 1.5))
    server = processes(**WEBHOOK_ENV)
    register(server, receiver)
    order_ids = place_orders(server, 10)
    wait_for(lambda: len(receiver.requests) >= 1, timeout=30)  # deliveries are in flight

    server.stop(signal.SIGKILL)
    killed.set()
    processes(**WEBHOOK_ENV)

    # Within the lease (the timeout + 10 s) of the killed attempts, every event arrives at least once.
    received = wait_for(
        receiver.succeeded, until=lambda got: len({r.message_id for r in got}) == 30, timeout=60, interval=0.2
    )
    assert receiver.unverified == []
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}


def test_a_burst_of_1000_orders_reaches_two_endpoints_each_event_once_and_in_order(processes, receivers):
    server = processes(**WEBHOOK_ENV)
    first, second = receivers(), receivers()
    register(server, first)
    register(server, second)

    order_ids = place_orders(server, 1000)

    for receiver in (first, second):
        received = wait_for(
            receiver.succeeded, until=lambda got: len({r.message_id for r in got}) == 3000, timeout=180, interval=0.5
        )
        assert receiver.unverified == []
        assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
