"""orders.services: status changes are compare-and-set and follow the TRANSITIONS table."""

from decimal import Decimal

import pytest

from orders.models import TRANSITIONS, Order
from orders.services import InvalidTransition, order_claim, order_complete, order_create
from tests.factories import OrderFactory
from tests.helpers import run_concurrently


def test_transitions_table_covers_every_status_and_only_known_ones():
    assert set(TRANSITIONS) == set(Order.Status)
    assert all(targets <= set(Order.Status) for targets in TRANSITIONS.values())
    assert TRANSITIONS[Order.Status.COMPLETED] == TRANSITIONS[Order.Status.CANCELLED] == frozenset()


@pytest.mark.django_db
def test_create_stores_a_pending_order_and_reports_it_created():
    order, created = order_create(user_id="u", item_ids=[1], total_amount=Decimal("1.50"))

    assert created is True
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


@pytest.mark.django_db
def test_claim_moves_pending_to_processing_and_counts_the_attempt():
    order = OrderFactory()

    assert order_claim(order_id=order.pk) is True

    order.refresh_from_db()
    assert (order.status, order.attempts) == (Order.Status.PROCESSING, 1)
    assert order.started_at is not None
    assert order.updated_at == order.started_at


@pytest.mark.django_db
def test_second_claim_loses_and_changes_nothing():
    order = OrderFactory()
    order_claim(order_id=order.pk)

    assert order_claim(order_id=order.pk) is False

    order.refresh_from_db()
    assert order.attempts == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Order.Status.PENDING, Order.Status.COMPLETED, Order.Status.CANCELLED])
def test_complete_only_moves_a_processing_order(status):
    order = OrderFactory(status=status)

    assert order_complete(order_id=order.pk) is False

    order.refresh_from_db()
    assert order.status == status
    assert order.completed_at is None


@pytest.mark.django_db
def test_complete_sets_completed_at():
    order = OrderFactory()
    order_claim(order_id=order.pk)

    assert order_complete(order_id=order.pk) is True

    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert order.completed_at == order.updated_at


def test_a_transition_outside_the_table_raises():
    from orders.services import _transition

    with pytest.raises(InvalidTransition):
        _transition(None, Order.Status.COMPLETED, Order.Status.PENDING, None)


@pytest.mark.django_db(transaction=True)
def test_racing_claims_from_many_threads_have_exactly_one_winner():
    order = OrderFactory()

    results = run_concurrently(lambda: order_claim(order_id=order.pk), 16)

    assert sorted(results) == [False] * 15 + [True]
    order.refresh_from_db()
    assert order.attempts == 1
