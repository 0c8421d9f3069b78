# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv from python3 when missing.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
# mysqlclient, MySQL's driver, compiles against MySQL's or MariaDB's client library (docs/operations.md lists the
# packages). Where that library is missing, the venv goes without it: MySQL is unavailable and its tests skip.
MYSQL_DRIVER := $(if $(shell pkg-config --exists mysqlclient 2>/dev/null && echo yes),$(VENV)/.installed-mysql)

.PHONY: run dev serve celery test test-services test-mysql lint clean bench loadtest

run: $(VENV)/.installed-prod $(MYSQL_DRIVER)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python -m order_system.server --bind 127.0.0.1:$(PORT)

# Production (docs/operations.md): DJANGO_PRODUCTION=1, so DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS
# are required and HTTPS is enforced. WEB_CONCURRENCY and WEB_THREADS size the server (order_system/server.py); BIND
# says where it listens.
BIND ?= 127.0.0.1:$(PORT)
serve: $(VENV)/.installed-prod $(MYSQL_DRIVER)
	DJANGO_PRODUCTION=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_PRODUCTION=1 $(BIN)/python manage.py collectstatic --noinput -v0
	DJANGO_PRODUCTION=1 $(BIN)/python -m order_system.server --bind $(BIND)

# One Celery worker for ORDER_QUEUE_BACKEND=celery (docs/operations.md, "Scaling out"); start as many as you need.
# For I/O-bound processors: make celery CELERY_POOL=threads CELERY_CONCURRENCY=500, with DATABASE_POOL_SIZE set.
# It takes the orders' queue and the webhooks' unless CELERY_WORKER_QUEUES names one (docs/operations.md).
CELERY_POOL ?= prefork
CELERY_CONCURRENCY ?= 8
CELERY_WORKER_QUEUES ?=
celery: $(VENV)/.installed-prod $(MYSQL_DRIVER)
	ORDER_QUEUE_BACKEND=celery $(BIN)/celery -A order_system worker --loglevel=INFO \
		--pool $(CELERY_POOL) --concurrency $(CELERY_CONCURRENCY) \
		$(if $(CELERY_WORKER_QUEUES),--queues $(CELERY_WORKER_QUEUES))

# runserver with Django's debug pages (passwords in URLs are hidden on them); `make run` serves with debug off.
dev: $(VENV)/.installed-prod $(MYSQL_DRIVER)
	$(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(VENV)/.installed-dev $(MYSQL_DRIVER)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/pytest

# The API suite, the recovery tests and the webhook tests that depend on the database again on PostgreSQL (the
# services tests run in `make test`, on PostgreSQL, MariaDB and Redis).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
test-services: $(VENV)/.installed-dev $(MYSQL_DRIVER)
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest \
		tests/orders tests/metrics tests/test_project.py tests/test_production.py tests/e2e/test_recovery.py \
		tests/webhooks/test_delivery.py tests/webhooks/test_outbox.py tests/webhooks/test_send_due.py \
		tests/webhooks/test_metrics.py

# The same on MariaDB or MySQL (Django's test runner makes test_test beside test).
TEST_MYSQL_URL ?= mysql://root@127.0.0.1:3306/test
test-mysql: $(VENV)/.installed-mysql
	$(MAKE) test-services TEST_DATABASE_URL=$(TEST_MYSQL_URL)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when a requirements file changed since the last install.
$(VENV)/.installed-prod: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@ $(VENV)/.installed-prod

$(VENV)/.installed-mysql: requirements-mysql.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-mysql.txt
	touch $@

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm test_db.sqlite3* staticfiles

# Benchmarks, not tests: ratios measured side by side in one run (see benchmarks/bench.py).
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null && command -v ab >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk apache2-utils)
	$(BIN)/python benchmarks/bench.py

# Against a running `make run`: make loadtest ARGS="--orders 1000 --concurrency 1000 --wait"
loadtest: $(VENV)/.installed-prod
	$(BIN)/python manage.py loadtest $(ARGS)
