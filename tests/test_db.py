"""write_transaction: SQLite writers take turns, and nobody waits for another transaction's on_commit callbacks."""

import threading

from django.db import connection, transaction

from order_system.db import write_transaction
from orders.models import Order
from tests.factories import OrderFactory


def test_other_writers_go_ahead_while_on_commit_callbacks_run(transactional_db):
    order = OrderFactory()
    other_wrote = threading.Event()

    def write_from_another_thread():
        with write_transaction():
            Order.objects.filter(pk=order.pk).update(user_id="changed")
        other_wrote.set()
        connection.close()

    def callback():
        # Processing inline, or publishing to a slow broker: other writers must not queue behind this.
        writer = threading.Thread(target=write_from_another_thread)
        writer.start()
        writer.join(timeout=10)

    with write_transaction():
        OrderFactory()
        transaction.on_commit(callback)

    assert other_wrote.is_set()
    assert Order.objects.get(pk=order.pk).user_id == "changed"


def test_a_rolled_back_write_transaction_lets_the_next_writer_in(transactional_db):
    try:
        with write_transaction():
            OrderFactory()
            raise RuntimeError("fails before the commit")
    except RuntimeError:
        pass
    entered = threading.Event()

    def write_from_another_thread():
        with write_transaction():
            entered.set()
        connection.close()

    writer = threading.Thread(target=write_from_another_thread)
    writer.start()
    writer.join(timeout=10)

    assert entered.is_set()
    assert Order.objects.count() == 0
