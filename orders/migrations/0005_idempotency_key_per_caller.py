"""Idempotency keys per caller: the primary key becomes (caller, key); the keys already stored get caller "".

Django cannot change a table's primary key into a composite one, so the keys move to a new table, which then takes
the old one's name.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BATCH = 1000


def copy_keys(apps, schema_editor, *, source: str, target: str, caller: bool) -> None:
    """Copy every key from one table to the other; back into the old table, a key used by two callers keeps one."""
    source_model, target_model = apps.get_model("orders", source), apps.get_model("orders", target)
    rows = source_model.objects.using(schema_editor.connection.alias).order_by("created_at")
    batch = []
    for row in rows.values("key", "fingerprint", "order_id", "created_at").iterator(chunk_size=BATCH):
        batch.append(target_model(**row, **({"caller": ""} if caller else {})))
        if len(batch) == BATCH:
            target_model.objects.bulk_create(batch, ignore_conflicts=not caller)
            batch = []
    if batch:
        target_model.objects.bulk_create(batch, ignore_conflicts=not caller)


def forwards(apps, schema_editor):
    copy_keys(apps, schema_editor, source="IdempotencyKey", target="CallerIdempotencyKey", caller=True)


def backwards(apps, schema_editor):
    copy_keys(apps, schema_editor, source="CallerIdempotencyKey", target="IdempotencyKey", caller=False)


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_order_list_keyset_indexes")]

    operations = [
        migrations.CreateModel(
            name="CallerIdempotencyKey",
            fields=[
                ("pk", models.CompositePrimaryKey("caller", "key", blank=True, editable=False, primary_key=True, serialize=False)),
                ("caller", models.CharField(max_length=64)),
                ("key", models.CharField(max_length=255)),
                ("fingerprint", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                (
                    "order",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="orders.order"
                    ),
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="IdempotencyKey"),
        migrations.RenameModel(old_name="CallerIdempotencyKey", new_name="IdempotencyKey"),
    ]
