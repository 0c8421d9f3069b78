"""Thread mode with several production-server processes on one database: SQLite file, PostgreSQL or MariaDB."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import PRODUCTION_ENV, SqliteDatabase, completed_ids, place_orders, wait_for


@pytest.fixture(params=["sqlite", "postgres_database", "mysql_database"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return SqliteDatabase(tmp_path / "orders.sqlite3")
    return request.getfixturevalue(request.param)


def test_500_concurrent_orders_over_two_servers_are_each_processed_once(processes, database):
    # Two production servers (make serve's granian, DJANGO_PRODUCTION=1) of two processes each: four in-process workers.
    env = {
        **PRODUCTION_ENV,
        "API_TOKENS": "",  # an open API, on purpose: this test is about processing
        "API_OPEN": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "ORDER_PROCESSING_SECONDS": "0-0.02",
        "ORDER_SWEEP_SECONDS": "0.2",
    }
    servers = [processes(**env) for _ in range(2)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        placed = set().union(*pool.map(lambda server: place_orders(server, 250, concurrency=250), servers))

    assert len(placed) == 500
    wait_for(lambda: database.statuses() == {"COMPLETED": 500}, timeout=120)
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
    completions = wait_for(
        lambda: [order_id for server in servers for order_id in completed_ids(server)],
        timeout=10,
        until=lambda ids: len(ids) >= 500,
    )
    assert sorted(completions) == sorted(placed)
