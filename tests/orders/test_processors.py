"""ORDER_PROCESSOR: every outcome, for an async and for a plain-def processor, on the real worker."""

import re
import subprocess
import sys
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from orders import processing
from orders.models import Order
from orders.processors import Retry
from orders.services import order_create
from tests import processors
from tests.helpers import ROOT, clean_env, wait_for

FINAL = (Order.Status.COMPLETED, Order.Status.FAILED)
# user_id (what the test processors do) -> (status, attempts, failure_reason pattern, result)
EXPECTED = {
    "returns-a-result": ("COMPLETED", 1, "", {"charged": "7.50", "items": [1, 2], "attempt": 1}),
    "returns-none": ("COMPLETED", 1, "", None),
    "rejects": ("FAILED", 1, "card declined", None),
    "retries": ("FAILED", 2, "gateway timeout", None),
    "retries-later": ("FAILED", 2, "gateway busy", None),
    "raises": ("FAILED", 2, "ValueError: stock service returned garbage", None),
    "hangs": ("FAILED", 2, r"Timed out after 0.5 s \(ORDER_PROCESSING_TIMEOUT_SECONDS\)\.", None),
    "returns-a-list": (
        "FAILED",
        1,
        "The processor's result was refused: a processor returns None or a dict, not list",
        None,
    ),
    "returns-nan": (
        "FAILED",
        1,
        "The processor's result was refused: it is not JSON: Out of range float values.*",
        None,
    ),
    "returns-a-nul": ("FAILED", 1, "The processor's result was refused: it holds a NUL character", None),
    "returns-decimals": ("COMPLETED", 1, "", {"amount": "7.50", "7": [1, 2]}),
    "rejects-without-words": ("FAILED", 1, "None", None),
    "succeeds-on-attempt-2": ("COMPLETED", 2, "not yet", {"attempt": 2}),
}


@pytest.fixture(params=["by_user_id", "by_user_id_sync"])
def worker_with_test_processor(request, start_worker):
    """The real worker, running tests.processors.by_user_id, async or as a plain def."""
    return start_worker(
        ORDER_PROCESSOR=f"tests.processors.{request.param}", ORDER_PROCESSING_TIMEOUT_SECONDS=0.5, ORDER_MAX_ATTEMPTS=2
    )


def test_every_outcome_of_a_processor_moves_the_order_as_the_contract_says(worker_with_test_processor, caplog):
    caplog.set_level("WARNING", logger="orders.processing")
    orders = {
        user_id: order_create(user_id=user_id, item_ids=[1, 2], total_amount="7.50")[0].pk for user_id in EXPECTED
    }

    wait_for(lambda: not Order.objects.exclude(status__in=FINAL).exists(), timeout=30)

    for user_id, (status, attempts, reason, result) in EXPECTED.items():
        order = Order.objects.get(pk=orders[user_id])
        assert (order.status, order.attempts, order.result) == (status, attempts, result), user_id
        assert re.fullmatch(reason, order.failure_reason), (user_id, order.failure_reason)
    # An unexpected exception keeps its traceback in the log, to debug the processor with.
    logged = [record for record in caplog.records if f"order_id={orders['raises']} " in record.getMessage()]
    assert [record.exc_info[0] for record in logged] == [ValueError, ValueError]
    # Retry's delay replaces the backoff: 1 s instead of 0.05 s before the second attempt.
    assert retry_gap(orders["retries-later"]) >= 1
    assert retry_gap(orders["retries"]) < 1


def retry_gap(order_id) -> float:
    """Seconds from an order's first attempt to its second, as the test processor saw them start."""
    first, second = processors.started[order_id]
    return second - first


def test_the_api_shows_the_result(worker_with_test_processor, api):
    created = api.post(
        "/api/orders/", {"user_id": "returns-a-result", "item_ids": [1, 2], "total_amount": 7.5}, format="json"
    )
    order_url = created["Location"]

    wait_for(lambda: api.get(order_url).json()["status"] == "COMPLETED")

    expected = {"charged": "7.50", "items": [1, 2], "attempt": 1}
    assert api.get(order_url).json()["result"] == expected
    assert api.get(f"{order_url}status/").json()["result"] == expected
    assert api.get("/api/orders/").json()["results"][0]["result"] == expected


def test_a_timed_out_plain_def_keeps_its_order_and_its_thread_until_it_returns(start_worker, monkeypatch):
    monkeypatch.setattr(processors, "HANG_SECONDS", 30)
    monkeypatch.setattr(processors, "release", threading.Event())
    backend = start_worker(
        ORDER_PROCESSOR="tests.processors.by_user_id_sync",
        ORDER_PROCESSING_TIMEOUT_SECONDS=0.2,
        ORDER_MAX_ATTEMPTS=1,
        ORDER_THREADS=1,
    )
    assert backend.stats()["concurrency"] == 1  # no more in flight than threads to run them
    hung = order_create(user_id="hangs", item_ids=[1], total_amount=1)[0]
    waiting = order_create(user_id="returns-none", item_ids=[1], total_amount=1)[0]

    def statuses():
        return tuple(Order.objects.get(pk=order.pk).status for order in (hung, waiting))

    wait_for(lambda: statuses() == ("PROCESSING", "PENDING"))
    # Well past the 0.2 s timeout, and many cycles later: a thread can't be stopped, so nobody else may start the
    # order, and the only thread is still taken.
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        assert statuses() == ("PROCESSING", "PENDING")
        time.sleep(0.05)
    processors.release.set()

    wait_for(lambda: statuses() == ("FAILED", "COMPLETED"))
    failed = Order.objects.get(pk=hung.pk)
    assert failed.failure_reason == "Timed out after 0.2 s (ORDER_PROCESSING_TIMEOUT_SECONDS)."
    assert failed.result is None  # what it returned at last was ignored


def test_readyz_fails_once_every_thread_hangs_past_the_lease(start_worker, monkeypatch, settings, client):
    monkeypatch.setattr(processors, "HANG_SECONDS", 30)
    monkeypatch.setattr(processors, "release", threading.Event())
    backend = start_worker(
        ORDER_PROCESSOR="tests.processors.by_user_id_sync", ORDER_PROCESSING_TIMEOUT_SECONDS=0.2, ORDER_THREADS=1
    )
    order_create(user_id="hangs", item_ids=[1], total_amount=1)
    wait_for(lambda: backend.stats()["in_flight"] == 1)
    assert client.get("/readyz").status_code == 200

    settings.ORDER_LEASE_SECONDS = 0.5
    wait_for(lambda: client.get("/readyz").status_code == 503)

    assert client.get("/readyz").json()["problems"] == {
        "queue": "every order in flight here has run past its lease: the processor hangs"
    }
    processors.release.set()
    wait_for(lambda: client.get("/readyz").status_code == 200)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("orders.nowhere.process", "ORDER_PROCESSOR 'orders.nowhere.process' can't be imported: No module named"),
        ("orders.processors.missing", "ORDER_PROCESSOR 'orders.processors.missing' can't be imported"),
        ("orders.processors.SWEEP", "can't be imported"),
        ("orders.models.TRANSITIONS", "ORDER_PROCESSOR 'orders.models.TRANSITIONS' is not callable (its type is dict)"),
        ("orders.examples.charge_payment", "orders.examples.charge_payment needs PAYMENT_SERVICE_URL"),
    ],
)
def test_a_bad_processor_path_stops_startup_with_a_message_naming_the_setting(path, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "", "ORDER_PROCESSOR": path},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert message in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_get_processor_refuses_what_it_cannot_call(settings):
    settings.ORDER_PROCESSOR = "orders.processors.MAX_RETRY_DELAY_SECONDS"

    with pytest.raises(ImproperlyConfigured, match=re.escape("DELAY_SECONDS' is not callable (its type is int)")):
        processing.get_processor()


def test_a_processor_that_fails_to_be_called_fails_its_attempt_not_the_worker(start_worker):
    backend = start_worker(ORDER_PROCESSOR="tests.processors.takes_nothing", ORDER_MAX_ATTEMPTS=1)
    [order_create(user_id="u", item_ids=[1], total_amount=1) for _ in range(2)]

    wait_for(lambda: Order.objects.filter(status=Order.Status.FAILED).count() == 2)

    assert set(Order.objects.values_list("failure_reason", flat=True)) == {
        "TypeError: takes_nothing() takes 0 positional arguments but 1 was given"
    }
    wait_for(lambda: backend.stats()["in_flight"] == 0)  # forgotten once the outcome is written
    assert backend.health() is None


@pytest.mark.parametrize("delay", [-1, 86_401, 1e14, float("inf"), float("nan")])
def test_a_retry_delay_is_0_to_a_day(delay):
    with pytest.raises(ValueError, match="Retry delay must be 0 to 86400 seconds"):
        Retry("later", delay=delay)


def test_a_server_with_a_bad_processor_path_exits_at_start_and_says_why(database, tmp_path):
    database.migrate()
    env = clean_env(DATABASE_URL=database.url, ORDER_PROCESSOR="shop.nowhere.fulfil")
    command = [sys.executable, "-m", "order_system.server", "--bind", "127.0.0.1:0"]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        returncode = server.wait(timeout=60)
    finally:
        server.kill()  # by its PID, if it is still running after all

    assert returncode != 0
    assert "ORDER_PROCESSOR 'shop.nowhere.fulfil' can't be imported: No module named 'shop'" in log.read_text()
