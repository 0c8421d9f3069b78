"""Django's MySQL backend, comparing text and UUIDs as PostgreSQL and SQLite do, for MySQL 8 and MariaDB alike."""

from django.db.backends.mysql import base, features, schema
from django.utils.functional import cached_property


class DatabaseFeatures(features.DatabaseFeatures):
    # MariaDB's uuid type (10.7+) sorts most UUIDs by their last group of digits first, so the list's keyset,
    # (created_at, order_id), would not follow the UUID's number as the cursors do. 32 hex digits sort as that number.
    has_native_uuid_field = False


class DatabaseSchemaEditor(schema.DatabaseSchemaEditor):
    @property
    def sql_create_table(self) -> str:
        # Whatever the database's default: a user id or an idempotency key matches only itself, byte for byte, so
        # "Alice" is not "alice" and "k " is not "k" (a binary collation without PAD SPACE).
        collation = self.connection.exact_collation
        return f"CREATE TABLE %(table)s (%(definition)s) DEFAULT CHARSET=utf8mb4 COLLATE={collation}"


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    SchemaEditorClass = DatabaseSchemaEditor

    @cached_property
    def exact_collation(self) -> str:
        """The binary utf8mb4 collation that compares trailing spaces too: each server names it differently."""
        return "utf8mb4_nopad_bin" if self.mysql_is_mariadb else "utf8mb4_0900_bin"
