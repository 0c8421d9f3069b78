"""The list's keyset: (created_at, order_id) newest first, in each of its three indexes.

Orders of one GroupCommit batch share a created_at, so created_at alone does not say where a page ends. The new
indexes get the same SQLite planner statistics as the old ones had in 0003, in place of theirs; the primary key's are
kept (ANALYZE would replace them with the real counts of what may still be an empty table).
"""

from django.db import migrations, models

OLD_INDEXES = ["order_created_idx", "order_status_created_idx", "order_user_created_idx"]
STATISTICS = [
    ("order_created_id_idx", "1000000 1 1"),
    ("order_status_created_id_idx", "1000000 200000 1 1"),  # five statuses
    ("order_user_created_id_idx", "1000000 10 1 1"),
]


def describe_the_new_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM sqlite_stat1 WHERE tbl = 'orders_order' AND idx IN (%s, %s, %s, %s, %s, %s)",
            OLD_INDEXES + [index for index, _ in STATISTICS],
        )
        cursor.executemany(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('orders_order', %s, %s)", STATISTICS
        )
        cursor.execute("ANALYZE sqlite_schema")  # this connection's planner reads them now, not at its next open


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_sqlite_planner_statistics")]

    operations = [
        migrations.AlterModelOptions(name="order", options={"ordering": ["-created_at", "-order_id"]}),
        migrations.RemoveIndex(model_name="order", name="order_created_idx"),
        migrations.RemoveIndex(model_name="order", name="order_status_created_idx"),
        migrations.RemoveIndex(model_name="order", name="order_user_created_idx"),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["-created_at", "-order_id"], name="order_created_id_idx"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "-created_at", "-order_id"], name="order_status_created_id_idx"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["user_id", "-created_at", "-order_id"], name="order_user_created_id_idx"),
        ),
        migrations.RunPython(describe_the_new_indexes, migrations.RunPython.noop),
    ]
