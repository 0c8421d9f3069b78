"""orders.services: every status change is a compare-and-set that follows the TRANSITIONS table."""

import itertools
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metrics.services import metrics_rebuild
from orders.models import TRANSITIONS, Order
from orders.processors import OrderSnapshot
from orders.services import (
    Claim,
    InvalidTransition,
    OrderNotInStatus,
    _Move,
    _transition,
    order_cancel,
    order_create,
    order_fail_attempt,
    order_retry,
    orders_claim,
    orders_complete,
    orders_expire_leases,
    orders_release,
    orders_send_due,
    retry_delay,
)
from tests.factories import OrderFactory, claim_one
from tests.helpers import run_concurrently

pytestmark = pytest.mark.django_db


def claimed_order(**fields) -> tuple[Order, Claim]:
    order = OrderFactory(**fields)
    return order, claim_one(order.pk)


def test_transitions_table_covers_every_status_and_only_known_ones():
    assert set(TRANSITIONS) == set(Order.Status)
    assert all(targets <= set(Order.Status) for targets in TRANSITIONS.values())
    assert TRANSITIONS[Order.Status.COMPLETED] == TRANSITIONS[Order.Status.CANCELLED] == frozenset()


def test_a_transition_outside_the_table_raises_and_changes_nothing():
    order = OrderFactory(status=Order.Status.COMPLETED)

    with pytest.raises(InvalidTransition):
        now = timezone.now()
        _transition([_Move(order.pk, 1, now, since=now)], Order.Status.COMPLETED, Order.Status.PENDING, now=now)

    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED


def test_create_stores_a_pending_order_that_is_due_at_once():
    order, created = order_create(user_id="u", item_ids=[1], total_amount=Decimal("1.50"))

    stored = Order.objects.get(pk=order.pk)
    assert created is True
    assert stored.status == Order.Status.PENDING
    assert stored.created_at == stored.available_at == stored.updated_at


def test_claim_moves_pending_to_processing_and_counts_the_attempt():
    order, claim = claimed_order()

    order.refresh_from_db()
    snapshot = OrderSnapshot(order.pk, order.user_id, tuple(order.item_ids), order.total_amount, 1, order.created_at)
    assert claim == Claim(snapshot, order.started_at)
    assert (order.status, order.attempts) == (Order.Status.PROCESSING, 1)
    assert order.updated_at == order.started_at


def test_claim_logs_one_structured_line(caplog):
    caplog.set_level("INFO", logger="orders.transitions")

    order, _ = claimed_order()

    [record] = caplog.records
    assert record.getMessage().startswith(f"order_id={order.pk} from=PENDING to=PROCESSING attempt=1 duration=")


def test_second_claim_loses_and_changes_nothing():
    order, _ = claimed_order()

    assert claim_one(order.pk) is None

    order.refresh_from_db()
    assert order.attempts == 1


def test_an_order_waiting_for_its_retry_cannot_be_claimed_early():
    order = OrderFactory(available_at=timezone.now() + timedelta(minutes=1))

    assert claim_one(order.pk) is None


@pytest.mark.parametrize("status", [Order.Status.CANCELLED, Order.Status.COMPLETED, Order.Status.FAILED])
def test_an_order_that_is_not_pending_is_never_claimed(status):
    order = OrderFactory(status=status)

    assert claim_one(order.pk) is None


def test_racing_claims_from_many_threads_have_exactly_one_winner_for_every_order(transactional_db):
    for order in OrderFactory.create_batch(20):
        claims = run_concurrently(lambda order=order: claim_one(order.pk), 16)

        assert len([claim for claim in claims if claim is not None]) == 1
        order.refresh_from_db()
        assert (order.status, order.attempts) == (Order.Status.PROCESSING, 1)


def test_an_order_claimed_alone_is_claimed_while_a_sweep_scans_the_pending_orders(transactional_db):
    # As Celery works: each order is claimed alone, as soon as it is committed, while the requeue sweep runs. InnoDB
    # locks every row a statement scans, not only those it takes: a claim that skipped locked rows passed over orders
    # the sweep was only looking at, and nobody claimed them.
    done = threading.Event()

    def sweep_until_done() -> None:
        try:
            while not done.is_set():
                orders_send_due(lost_after=timedelta(minutes=5), limit=1000)
        finally:
            connection.close()

    def create_and_claim(count: int) -> list:
        """Orders this thread created and could not claim."""
        missed = []
        for _ in range(count):
            order, _ = order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
            if claim := claim_one(order.pk):
                orders_complete(claims=[claim])
            else:
                missed.append(order.pk)
        return missed

    sweeper = threading.Thread(target=sweep_until_done)
    sweeper.start()
    try:
        missed = run_concurrently(lambda: create_and_claim(25), 12)
    finally:
        done.set()
        sweeper.join(30)

    assert [order_id for thread in missed for order_id in thread] == []
    assert Counter(Order.objects.values_list("status", flat=True)) == {Order.Status.COMPLETED: 300}


def test_a_cancel_racing_claims_either_wins_alone_or_loses_with_the_status_that_won(transactional_db):
    turns = itertools.count()

    def cancel_or_claim(order_id):
        if next(turns) % 2:
            return claim_one(order_id)
        try:
            return order_cancel(order_id=order_id)
        except OrderNotInStatus as refused:
            return refused.status

    for order in OrderFactory.create_batch(10):
        outcomes = run_concurrently(lambda order=order: cancel_or_claim(order.pk), 8)

        order.refresh_from_db()
        winners = [outcome for outcome in outcomes if isinstance(outcome, Order | Claim)]
        assert len(winners) == 1
        assert {outcome for outcome in outcomes if isinstance(outcome, str)} <= {order.status}
        assert order.status in {Order.Status.CANCELLED, Order.Status.PROCESSING}


def test_complete_finishes_a_claimed_order():
    order, claim = claimed_order()

    assert orders_complete(claims=[claim]) == 1

    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert order.completed_at == order.updated_at


def test_a_stale_claim_cannot_complete_an_order_someone_else_now_owns():
    order, stale = claimed_order()
    orders_release(claims=[stale])
    current = claim_one(order.pk)

    assert orders_complete(claims=[stale]) == 0
    assert order_fail_attempt(claim=stale, reason="late") is None
    assert orders_release(claims=[stale]) == 0
    order.refresh_from_db()
    assert (order.status, order.attempts, order.started_at) == (Order.Status.PROCESSING, 1, current.started_at)


def test_failed_attempt_is_retried_after_exponential_backoff(settings):
    settings.ORDER_RETRY_BACKOFF_SECONDS = 10
    order, claim = claimed_order()

    assert order_fail_attempt(claim=claim, reason="card declined") == Order.Status.PENDING

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert order.failure_reason == "card declined"
    assert order.available_at == order.updated_at + timedelta(seconds=10)
    assert claim_one(order.pk) is None  # not due yet


def test_retry_delay_doubles_and_is_capped(settings):
    settings.ORDER_RETRY_BACKOFF_SECONDS = 1.5

    assert [retry_delay(attempt).total_seconds() for attempt in (1, 2, 3, 4)] == [1.5, 3.0, 6.0, 12.0]
    assert retry_delay(50) == timedelta(minutes=5)


def test_last_failed_attempt_fails_the_order_with_its_reason(settings):
    settings.ORDER_MAX_ATTEMPTS = 1
    order, claim = claimed_order()

    assert order_fail_attempt(claim=claim, reason="out of stock") == Order.Status.FAILED

    order.refresh_from_db()
    assert (order.status, order.failure_reason) == (Order.Status.FAILED, "out of stock")
    assert order.completed_at == order.updated_at


def test_expired_lease_counts_as_a_failed_attempt_and_a_fresh_one_stays(settings):
    settings.ORDER_LEASE_SECONDS = 60
    expired, claim = claimed_order()
    fresh, _ = claimed_order()
    Order.objects.filter(pk=expired.pk).update(started_at=claim.started_at - timedelta(seconds=61))

    assert orders_expire_leases() == 1

    expired.refresh_from_db()
    fresh.refresh_from_db()
    assert (expired.status, fresh.status) == (Order.Status.PENDING, Order.Status.PROCESSING)
    assert expired.failure_reason.startswith("Lease expired")
    assert expired.attempts == 1


def test_expired_lease_on_the_last_attempt_fails_the_order(settings):
    settings.ORDER_MAX_ATTEMPTS = 1
    settings.ORDER_LEASE_SECONDS = 60
    order, _ = claimed_order()
    Order.objects.filter(pk=order.pk).update(started_at=timezone.now() - timedelta(seconds=61))

    assert orders_expire_leases() == 1

    order.refresh_from_db()
    assert order.status == Order.Status.FAILED
    assert "Lease expired" in order.failure_reason


def test_cancel_moves_pending_to_cancelled_and_it_is_never_claimed():
    order = OrderFactory()

    order_cancel(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert claim_one(order.pk) is None


@pytest.mark.parametrize("status", [s for s in Order.Status if s != Order.Status.PENDING])
def test_cancel_of_an_order_that_is_not_pending_raises_with_its_status(status):
    order = OrderFactory(status=status)

    with pytest.raises(OrderNotInStatus) as raised:
        order_cancel(order_id=order.pk)

    assert raised.value.status == status
    order.refresh_from_db()
    assert order.status == status


def test_retry_gives_a_failed_order_one_more_attempt():
    order = OrderFactory(status=Order.Status.FAILED, attempts=3, failure_reason="declined", completed_at=timezone.now())

    order_retry(order_id=order.pk)

    order.refresh_from_db()
    assert (order.status, order.attempts, order.completed_at) == (Order.Status.PENDING, 3, None)
    claim = claim_one(order.pk)
    assert claim.attempt == 4
    assert order_fail_attempt(claim=claim, reason="declined again") == Order.Status.FAILED


def test_release_at_shutdown_does_not_use_up_an_attempt():
    order, claim = claimed_order()

    assert orders_release(claims=[claim]) == 1

    order.refresh_from_db()
    assert (order.status, order.attempts) == (Order.Status.PENDING, 0)


@pytest.mark.parametrize("status", [s for s in Order.Status if s != Order.Status.FAILED])
def test_retry_of_an_order_that_has_not_failed_raises(status):
    order = OrderFactory(status=status)

    with pytest.raises(OrderNotInStatus):
        order_retry(order_id=order.pk)


def test_the_send_sweep_sends_each_long_waiting_pending_order_once_per_period(django_capture_on_commit_callbacks):
    long_ago = timezone.now() - timedelta(minutes=10)
    stale = [OrderFactory(created_at=long_ago + timedelta(seconds=n), available_at=long_ago) for n in range(2)]
    OrderFactory()  # just placed: its message is surely still on its way
    OrderFactory(status=Order.Status.PROCESSING, available_at=long_ago)

    with django_capture_on_commit_callbacks() as sent:
        first = orders_send_due(lost_after=timedelta(minutes=5), limit=10)
    second = orders_send_due(lost_after=timedelta(minutes=5), limit=10)

    assert first == [order.pk for order in stale]  # oldest first
    assert [callback.args for callback in sent] == [(order.pk,) for order in stale]
    assert second == []  # marked as sent again: the next sweep leaves them alone for another period
    assert Order.objects.get(pk=stale[0].pk).status == Order.Status.PENDING


def test_the_send_sweep_sends_a_retry_once_its_backoff_is_over_and_only_once(django_capture_on_commit_callbacks):
    order, claim = claimed_order()
    order_fail_attempt(claim=claim, reason="gateway busy", delay=60)
    placed = order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))[0]  # sent when it was placed
    later = {
        "available_at": F("available_at") - timedelta(seconds=61),
        "updated_at": F("updated_at") - timedelta(seconds=61),
    }
    lost_after = timedelta(minutes=5)

    waiting = orders_send_due(lost_after=lost_after, limit=10)
    Order.objects.filter(pk__in=[order.pk, placed.pk]).update(**later)  # a minute goes by
    with django_capture_on_commit_callbacks() as sent:
        over = orders_send_due(lost_after=lost_after, limit=10)
    again = orders_send_due(lost_after=lost_after, limit=10)

    assert waiting == []  # its backoff is not over
    assert over == [order.pk]
    assert [callback.args for callback in sent] == [(order.pk,)]
    assert again == []  # sent: the next sweep leaves it to its message
    assert claim_one(order.pk).attempt == 2


def test_a_batch_claim_takes_exactly_the_due_pending_orders_in_the_order_given(settings):
    settings.ORDER_RETRY_BACKOFF_SECONDS = 60
    waiting, taken, cancelled = [order_create(user_id="u", item_ids=[1], total_amount=1)[0] for _ in range(3)]
    due = [order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))[0] for _ in range(3)]
    order_fail_attempt(claim=claim_one(waiting.pk), reason="declined")  # PENDING, due in a minute
    claim_one(taken.pk)
    order_cancel(order_id=cancelled.pk)
    asked = [due[2].pk, taken.pk, due[0].pk, waiting.pk, cancelled.pk, due[1].pk, due[0].pk]

    claims = orders_claim(order_ids=asked)

    assert [claim.order_id for claim in claims] == [due[2].pk, due[0].pk, due[1].pk]
    assert {claim.attempt for claim in claims} == {1}
    assert len({claim.started_at for claim in claims}) == 1  # one UPDATE, one fence
    assert Counter(Order.objects.values_list("status", flat=True)) == {"PROCESSING": 4, "PENDING": 1, "CANCELLED": 1}
    assert metrics_rebuild() == 0


def claim_queries(count: int, backlog: int = 0) -> int:
    """The queries one orders_claim of count orders runs, with a backlog of other PENDING orders it is not given."""
    asked = OrderFactory.create_batch(count)
    OrderFactory.create_batch(backlog)
    with CaptureQueriesContext(connection) as queries:
        claims = orders_claim(order_ids=[order.pk for order in asked])
    assert len(claims) == count
    return len(queries)


def test_a_batch_claim_runs_as_many_queries_for_one_order_as_for_a_hundred_behind_a_backlog(settings):
    settings.METRICS_SHARDS = 1  # the metrics take one upsert per shard the orders fall in (8 on PostgreSQL)
    one = claim_queries(1)

    assert claim_queries(100, backlog=300) == one


def test_a_batch_completion_finishes_only_the_orders_its_claims_still_own(settings):
    settings.ORDER_LEASE_SECONDS = 1
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0
    orders = [order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))[0] for _ in range(3)]
    claims = orders_claim(order_ids=[order.pk for order in orders])
    lost = claims[1]
    Order.objects.filter(pk=lost.order_id).update(started_at=lost.started_at - timedelta(seconds=5))
    orders_expire_leases()  # the claim on orders[1] expired: it is PENDING again, for someone else
    newer = claim_one(lost.order_id)

    assert orders_complete(claims=claims) == 2

    statuses = {order.pk: order.status for order in Order.objects.all()}
    assert statuses == {orders[0].pk: "COMPLETED", orders[1].pk: "PROCESSING", orders[2].pk: "COMPLETED"}
    assert orders_complete(claims=[newer]) == 1
    assert metrics_rebuild() == 0


def test_claims_of_different_batches_complete_together_each_fenced_by_its_own_claim():
    first = orders_claim(order_ids=[order_create(user_id="u", item_ids=[1], total_amount=1)[0].pk for _ in range(2)])
    second = orders_claim(order_ids=[order_create(user_id="u", item_ids=[1], total_amount=1)[0].pk])
    stale = Claim(first[1].order, first[1].started_at - timedelta(seconds=1))  # an older owner of first[1]

    assert orders_complete(claims=[first[0], stale, *second]) == 2

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert [statuses[claim.order_id] for claim in [*first, *second]] == ["COMPLETED", "PROCESSING", "COMPLETED"]
    assert metrics_rebuild() == 0


def test_completion_stores_each_orders_own_result():
    claims = orders_claim(order_ids=[order_create(user_id="u", item_ids=[1], total_amount=1)[0].pk for _ in range(3)])
    results = {claims[0].order_id: {"transaction_id": "tx_1", "items": [1, 2]}, claims[1].order_id: None}

    assert orders_complete(claims=claims, results=results) == 3

    stored = dict(Order.objects.values_list("pk", "result"))
    assert [stored[claim.order_id] for claim in claims] == [{"transaction_id": "tx_1", "items": [1, 2]}, None, None]


def test_a_final_failure_fails_the_order_at_once_whatever_attempts_are_left(settings):
    settings.ORDER_MAX_ATTEMPTS = 5
    order, _ = order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
    claim = claim_one(order.pk)

    assert order_fail_attempt(claim=claim, reason="card declined", final=True) == Order.Status.FAILED

    order.refresh_from_db()
    assert (order.status, order.attempts, order.failure_reason) == (Order.Status.FAILED, 1, "card declined")
    assert metrics_rebuild() == 0


def test_a_given_delay_replaces_the_backoff(settings):
    settings.ORDER_RETRY_BACKOFF_SECONDS = 1
    order, claim = claimed_order()

    assert order_fail_attempt(claim=claim, reason="gateway timeout", delay=90) == Order.Status.PENDING

    order.refresh_from_db()
    assert order.available_at - order.updated_at == timedelta(seconds=90)


def test_a_claim_carries_a_snapshot_of_the_order_for_its_attempt():
    order = OrderFactory(user_id="user44", item_ids=[1, 2, 3], total_amount=Decimal("90.99"), attempts=1)

    claim = claim_one(order.pk)

    assert claim.order == OrderSnapshot(order.pk, "user44", (1, 2, 3), Decimal("90.99"), 2, order.created_at)
