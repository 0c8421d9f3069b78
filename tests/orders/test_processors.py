"""ORDER_PROCESSOR: every outcome, for an async and for a plain-def processor, on the real worker."""

import re
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from orders import processing
from orders.models import Order
from orders.processors import Retry
from orders.services import order_create
from tests.helpers import ROOT, wait_for

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
    "returns-a-list": ("FAILED", 2, "TypeError: a processor returns None or a dict, not list", None),
    "returns-nan": ("FAILED", 2, "ValueError: Out of range float values are not JSON compliant", None),
    "succeeds-on-attempt-2": ("COMPLETED", 2, "not yet", {"attempt": 2}),
}


@pytest.fixture(params=["by_user_id", "by_user_id_sync"])
def worker_with_test_processor(request, start_worker):
    """The real worker, running tests.processors.by_user_id, async or as a plain def."""
    return start_worker(
        ORDER_PROCESSOR=f"tests.processors.{request.param}", ORDER_PROCESSING_TIMEOUT_SECONDS=0.5, ORDER_MAX_ATTEMPTS=2
    )


def test_every_outcome_of_a_processor_moves_the_order_as_the_contract_says(worker_with_test_processor, caplog):
    caplog.set_level("INFO", logger="orders.transitions")
    orders = {
        user_id: order_create(user_id=user_id, item_ids=[1, 2], total_amount="7.50")[0].pk for user_id in EXPECTED
    }

    wait_for(lambda: not Order.objects.exclude(status__in=FINAL).exists(), timeout=30)

    for user_id, (status, attempts, reason, result) in EXPECTED.items():
        order = Order.objects.get(pk=orders[user_id])
        assert (order.status, order.attempts, order.result) == (status, attempts, result), user_id
        assert re.fullmatch(reason, order.failure_reason), (user_id, order.failure_reason)
    # Retry's delay replaces the backoff: 0.3 s instead of 0.05 s before the second attempt. (The log line of the
    # failure is written a moment after the retry time was set, hence the margin.)
    assert retry_gap(caplog, orders["retries-later"]) >= 0.25
    assert retry_gap(caplog, orders["retries"]) < 0.25


def retry_gap(caplog, order_id) -> float:
    """Seconds from an order's first failed attempt to its second claim, from the transition log."""
    moves = [record for record in caplog.records if str(order_id) in record.getMessage()]
    [failed] = [record.created for record in moves if "from=PROCESSING to=PENDING" in record.getMessage()]
    second_claim = [record.created for record in moves if "to=PROCESSING" in record.getMessage()][1]
    return second_claim - failed


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


def test_a_plain_def_gets_its_own_threads_and_a_timed_out_one_keeps_its_thread_until_it_returns(start_worker):
    backend = start_worker(
        ORDER_PROCESSOR="tests.processors.by_user_id_sync",
        ORDER_PROCESSING_TIMEOUT_SECONDS=0.2,
        ORDER_MAX_ATTEMPTS=1,
        ORDER_THREADS=2,
    )
    assert backend.stats()["concurrency"] == 2  # no more in flight than threads to run them
    [order_create(user_id="hangs", item_ids=[1], total_amount=1) for _ in range(2)]
    wait_for(lambda: Order.objects.filter(status=Order.Status.FAILED).count() == 2)
    done = order_create(user_id="returns-none", item_ids=[1], total_amount=1)[0]
    # Both threads still run the timed-out orders (3 s each): the new order waits for one of them.
    assert Order.objects.get(pk=done.pk).status == Order.Status.PENDING
    wait_for(lambda: Order.objects.get(pk=done.pk).status == Order.Status.COMPLETED, timeout=10)
    backend.stop()
    # What the timed-out orders returned at last was ignored.
    assert set(Order.objects.filter(user_id="hangs").values_list("status", "result")) == {("FAILED", None)}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("orders.nowhere.process", "ORDER_PROCESSOR 'orders.nowhere.process' can't be imported: No module named"),
        ("orders.processors.missing", "ORDER_PROCESSOR 'orders.processors.missing' can't be imported"),
        ("orders.processors.SWEEP", "can't be imported"),
        ("orders.models.TRANSITIONS", "ORDER_PROCESSOR 'orders.models.TRANSITIONS' is a dict, not a callable"),
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
    settings.ORDER_PROCESSOR = "orders.processors.OrderSnapshot.order_id"

    with pytest.raises(ImproperlyConfigured, match="can't be imported"):
        processing.get_processor()


@pytest.mark.parametrize("delay", [-1, float("inf"), float("nan")])
def test_a_retry_delay_must_be_finite_seconds(delay):
    with pytest.raises(ValueError, match="Retry delay must be finite seconds"):
        Retry("later", delay=delay)
