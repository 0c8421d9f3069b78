"""The SQLite backend (order_system.sqlite): every write, whoever makes it, waits for the writer lock, reads never do,
and the lock is free again before a transaction's on_commit callbacks run, and in a forked child."""

import fcntl
import os
import signal
import sqlite3
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from order_system.sqlite.lock import writer_lock
from orders.models import IdempotencyKey, Order
from tests.factories import OrderFactory
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend")


@contextmanager
def another_writer():
    """A writer as another process's would be: it holds the writer lock's flock, through a lock file it opened itself,
    and SQLite's write lock, until the block ends; then it commits and lets go."""
    database = connection.settings_dict["NAME"]
    lock_file = os.open(f"{database}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
    wait_for(lambda: took_the_flock(lock_file), timeout=10)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("COMMIT")
        holder.close()
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        os.close(lock_file)


def took_the_flock(lock_file: int) -> bool:
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def waiting_for_the_flock() -> int:
    """How many wait for the flock on the database's lock file now: the '->' lines of /proc/locks."""
    inode = os.stat(f"{connection.settings_dict['NAME']}.writelock").st_ino
    locks = [line.split() for line in Path("/proc/locks").read_text().splitlines()]
    return sum(1 for lock in locks if lock[1] == "->" and int(lock[6].rsplit(":", 1)[1]) == inode)


def in_thread(function, *args, **kwargs) -> Future:
    """Run function on a thread of its own, with a database connection of its own, closed when it returns."""
    future: Future = Future()

    def run():
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True).start()
    return future


def written_after_another_writer(write):
    """Run write() on a thread while another writer holds the lock. It must queue for the flock, not sleep in SQLite's
    busy wait (nor fail with "database is locked"), and succeed once the other lets go; returns what it returned."""
    with another_writer():
        result = in_thread(write)
        wait_for(lambda: waiting_for_the_flock() == 1, timeout=10)
    return result.result(timeout=30)


def test_a_write_outside_a_transaction_waits_for_its_turn(transactional_db):
    order = OrderFactory()

    written_after_another_writer(lambda: Order.objects.filter(pk=order.pk).update(user_id="changed"))

    assert Order.objects.get(pk=order.pk).user_id == "changed"


def test_metrics_rebuild_waits_for_its_turn(transactional_db):
    OrderFactory()  # stored without its metrics, for the rebuild to count
    output = StringIO()

    written_after_another_writer(lambda: call_command("metrics_rebuild", stdout=output))

    assert output.getvalue() == "metrics_rebuild: 1 metric rows changed.\n"


def test_prune_idempotency_keys_waits_for_its_turn(transactional_db):
    key = IdempotencyKey.objects.create(key="old", fingerprint="f" * 64, order=OrderFactory())
    IdempotencyKey.objects.filter(pk=key.pk).update(created_at=timezone.now() - timedelta(days=2))
    output = StringIO()

    written_after_another_writer(lambda: call_command("prune_idempotency_keys", stdout=output))

    assert output.getvalue() == "Deleted 1 idempotency keys.\n"


def test_an_admin_write_waits_for_its_turn(transactional_db):
    admin = Client()
    admin.force_login(User.objects.create_superuser("admin", password="pw"))
    customer = User.objects.create_user("customer")

    response = written_after_another_writer(
        lambda: admin.post(
            "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [customer.pk], "post": "yes"}
        )
    )

    assert response.status_code == 302
    assert not User.objects.filter(pk=customer.pk).exists()


def test_a_read_outside_a_transaction_does_not_wait_for_the_writer_lock(transactional_db):
    OrderFactory()

    with another_writer():
        count = in_thread(Order.objects.count)
        assert count.result(timeout=10) == 1


def test_other_writers_go_ahead_while_on_commit_callbacks_run(transactional_db):
    order = OrderFactory()

    def callback():
        # Processing inline, or publishing to a slow broker: other writers must not queue behind this.
        in_thread(Order.objects.filter(pk=order.pk).update, user_id="changed").result(timeout=10)

    with transaction.atomic():
        OrderFactory()
        transaction.on_commit(callback)

    assert Order.objects.get(pk=order.pk).user_id == "changed"


def test_a_rolled_back_transaction_lets_the_next_writer_in(transactional_db):
    with pytest.raises(RuntimeError), transaction.atomic():
        OrderFactory()
        raise RuntimeError("fails before the commit")

    in_thread(OrderFactory).result(timeout=10)

    assert Order.objects.count() == 1


def test_a_forked_child_lets_go_of_its_copy_of_its_parents_lock(transactional_db):
    """Else a parent that dies holding the lock would leave it held for as long as the child lives."""
    read_end, write_end = os.pipe()

    parent = os.fork()
    if parent == 0:  # takes the lock, forks a child that lives on, and dies holding the lock
        try:
            writer_lock(connection.settings_dict["NAME"]).acquire()
            child = os.fork()
            if child == 0:
                time.sleep(60)  # outlives the test, which kills it
                os._exit(0)
            os.write(write_end, f"{child}\n".encode())
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    child = int(os.read(read_end, 32))
    os.waitpid(parent, 0)
    try:
        with another_writer():
            pass  # it got the lock
    finally:
        os.kill(child, signal.SIGKILL)
        os.close(read_end)
        os.close(write_end)
