"""Django's SQLite backend, with every writer taking its turn on a WriterLock: ENGINE "order_system.sqlite"."""
