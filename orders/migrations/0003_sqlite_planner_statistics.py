"""Tell SQLite's query planner that a status matches many orders, so that claims look orders up by key.

Without statistics, SQLite assumes that `status = ?` on an indexed column picks out about ten rows. A claim,
`WHERE order_id IN (...) AND status = 'PENDING'`, then walked the status index through every PENDING order instead of
looking up its few ids: its cost grew with the backlog. These rows of sqlite_stat1 describe a large table with few
statuses and many users, as ANALYZE would find it; running ANALYZE later replaces them with real counts.
"""

from django.db import migrations

STATISTICS = [
    ("sqlite_autoindex_orders_order_1", "1000000 1"),  # the primary key: one order per id
    ("order_status_created_idx", "1000000 200000 1"),  # five statuses
    ("order_user_created_idx", "1000000 10 1"),
    ("order_created_idx", "1000000 1"),
]


def describe_the_orders_table(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order")  # creates sqlite_stat1
        cursor.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'orders_order'")
        cursor.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('orders_order', %s, %s)", STATISTICS
        )
        cursor.execute("ANALYZE sqlite_schema")  # this connection's planner reads them now, not at its next open


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_result")]

    operations = [migrations.RunPython(describe_the_orders_table, migrations.RunPython.noop)]
