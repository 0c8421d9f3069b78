"""Counters and per-minute rows keyed by (name, shard) and (minute, shard) as their primary keys, instead of an id.

Django cannot turn a primary key into a composite one, so the rows move to new tables, which then take the old names.
"""

from django.db import migrations, models


def copy_rows(apps, schema_editor, *, source: str, target: str, fields: tuple[str, str, str]) -> None:
    source_model, target_model = apps.get_model("metrics", source), apps.get_model("metrics", target)
    rows = source_model.objects.using(schema_editor.connection.alias).values(*fields)
    target_model.objects.using(schema_editor.connection.alias).bulk_create(
        [target_model(**row) for row in rows.iterator()], batch_size=1000
    )


def forwards(apps, schema_editor):
    copy_rows(apps, schema_editor, source="Counter", target="KeyedCounter", fields=("name", "shard", "value"))
    copy_rows(apps, schema_editor, source="CompletedMinute", target="KeyedMinute", fields=("minute", "shard", "count"))


def backwards(apps, schema_editor):
    copy_rows(apps, schema_editor, source="KeyedCounter", target="Counter", fields=("name", "shard", "value"))
    copy_rows(apps, schema_editor, source="KeyedMinute", target="CompletedMinute", fields=("minute", "shard", "count"))


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="KeyedCounter",
            fields=[
                ("pk", models.CompositePrimaryKey("name", "shard", blank=True, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=64)),
                ("shard", models.PositiveSmallIntegerField()),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="KeyedMinute",
            fields=[
                ("pk", models.CompositePrimaryKey("minute", "shard", blank=True, editable=False, primary_key=True, serialize=False)),
                ("minute", models.DateTimeField()),
                ("shard", models.PositiveSmallIntegerField()),
                ("count", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="Counter"),
        migrations.DeleteModel(name="CompletedMinute"),
        migrations.RenameModel(old_name="KeyedCounter", new_name="Counter"),
        migrations.RenameModel(old_name="KeyedMinute", new_name="CompletedMinute"),
    ]
