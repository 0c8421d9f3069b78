"""The database backend DATABASE_URL=mysql://... selects, for MySQL and MariaDB alike (docs/operations.md)."""
