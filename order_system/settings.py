"""Settings for the order system: everything comes from the environment, read once, here."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers as default_cors_headers
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from kombu import Exchange, Queue

from order_system.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_optional_bool,
    env_rate,
    env_seconds_range,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def local_secret_key(path: Path) -> str:
    """This checkout's own key, made on first use so admin sessions survive restarts.

    Written to a temporary file, then linked into place: processes starting together all read the one key that won.
    """
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.")  # mode 0600
        with os.fdopen(descriptor, "w") as file:
            file.write(get_random_secret_key())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first; its key is the one
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty; delete it and a new secret key is made")
    return key


# Production (make serve) is strict: no debug, a secret key and allowed hosts given, HTTPS only. Anything else is a
# local run on http://127.0.0.1:8000, with debug off unless asked for (make dev) and a generated key.
PRODUCTION = env_bool("DJANGO_PRODUCTION", False)
DEBUG = env_bool("DJANGO_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG=1 is not allowed with DJANGO_PRODUCTION=1")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_PRODUCTION=1")
    SECRET_KEY = local_secret_key(Path(os.environ.get("DJANGO_SECRET_KEY_FILE") or BASE_DIR / ".secret_key"))

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_PRODUCTION=1, e.g. orders.example.com")

# Production behind a TLS-terminating proxy: HTTPS only, secure cookies, HSTS (docs/operations.md).
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain HTTP
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
# With HSTS on, subdomains and browser preload lists follow unless switched off one by one.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", PRODUCTION)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "orders",
    "metrics",
    "webhooks",
    "axes",
]

MIDDLEWARE = [
    "order_system.middleware.CountRequests",
    # Next, so a bad Host or too many fields gets the API's JSON 4xx, never a debug page (unknown paths: urls.py), and
    # a body without a Content-Length is refused before anything (CSRF, sessions, the admin's forms) reads it.
    "order_system.middleware.RejectBadRequests",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with 429
]

ROOT_URLCONF = "order_system.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "order_system" / "templates"],  # the admin index, with a metrics summary
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "order_system.wsgi.application"

# SQLite by default; DATABASE_URL=postgres://... switches to PostgreSQL with no code change.
# PostgreSQL only: DATABASE_POOL_SIZE=N shares N connections among all of a process's threads (Django's psycopg
# pool), for Celery's threads pool with hundreds of orders in flight (docs/operations.md, "Scaling out").
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Persistent connections: reconnecting per request halves SQLite's insert rate (WAL checkpoints on close).
        conn_max_age=0 if DATABASE_POOL_SIZE else env_int("DATABASE_CONN_MAX_AGE", 600),
        conn_health_checks=True,
    )
}
if DATABASE_POOL_SIZE:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOL_SIZE works with PostgreSQL only")
    # A connection goes back to the pool whenever Django closes it: at the end of each request or task. A thread waits
    # at most 5 s for one, well inside an order's lease.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 5,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend, with writers taking turns on a lock (docs/operations.md, "Concurrency on SQLite").
    DATABASES["default"]["ENGINE"] = "order_system.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        # Take the write lock at BEGIN, so concurrent writers queue instead of failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        # A checkpoint every 10,000 WAL pages (40 MB), not 1,000: the hot index pages of a burst of inserts are
        # copied back once instead of ten times, by a writer holding the lock (docs/performance.md).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000",
    }
    # A file, not :memory:, so tests run the same WAL locking as production, across threads and processes.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":  # MySQL 8 or MariaDB (docs/operations.md)
    DATABASES["default"]["ENGINE"] = "order_system.mysql"  # exact text and UUIDs in key order
    DATABASES["default"]["OPTIONS"] = {
        "charset": "utf8mb4",  # up to four bytes a character: an emoji is stored, not refused or mangled
        # What the claims and the metrics are written for, as on PostgreSQL: each statement sees what is committed.
        "isolation_level": "read committed",
        # Strict: a value that does not fit is an error, never truncated, rounded or zeroed with a warning.
        "init_command": "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
        **DATABASES["default"].get("OPTIONS", {}),  # what the URL's query string sets, such as ssl
    }

# /readyz fails when the SQLite database's disk has less free space than this, before writes start failing.
READYZ_MIN_FREE_MB = env_int("READYZ_MIN_FREE_MB", 100)

# Throttling counts requests in this cache: per process by default, shared by every process with a Redis URL.
_cache_scheme = os.environ.get("CACHE_URL", "").partition("://")[0]
if _cache_scheme not in {"", "redis", "rediss", "unix"}:  # the URL itself may hold a password: only its scheme is shown
    raise ImproperlyConfigured(
        f"CACHE_URL must be a Redis URL (redis://, rediss:// or unix://), not {_cache_scheme}://..."
    )
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
    if os.environ.get("CACHE_URL")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Metric counters are split over this many rows each, so concurrent writers on PostgreSQL rarely share one.
# SQLite serialises all writers anyway, so one shard is enough there.
METRICS_SHARDS = env_int(
    "METRICS_SHARDS", 1 if DATABASES["default"]["ENGINE"] == "order_system.sqlite" else 8, minimum=1
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Admin logins are throttled by django-axes: after ADMIN_LOGIN_FAILURE_LIMIT failures a username is locked whichever
# address tries it, and an address whichever usernames it tries, for ADMIN_LOGIN_COOLOFF_MINUTES. Its backend comes
# first, so a locked-out attempt is refused before any password is hashed.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "order_system.middleware.client_address"  # the address the API's throttles see

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Bodies over 1 MB are refused with 413 before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_HEADERS = (*default_cors_headers, "idempotency-key")
CORS_ALLOW_METHODS = ("GET", "HEAD", "OPTIONS", "POST")
CORS_EXPOSE_HEADERS = ["Location", "Idempotent-Replayed"]

# Who may call the API (docs/operations.md, "Access"). Open, as the seed assumes, unless API_TOKENS lists service
# tokens (comma-separated) or API_AUTH names JWT; the two combine. Production serves an open API only when told to.
API_TOKENS = env_list("API_TOKENS")
API_AUTH = env_list("API_AUTH")
if unknown := set(API_AUTH) - {"jwt"}:
    raise ImproperlyConfigured(f"API_AUTH names authentication schemes, of which there is one: jwt; not {unknown}")
API_OPEN = not (API_TOKENS or API_AUTH)
_open_on_purpose = env_optional_bool("API_OPEN")
if _open_on_purpose is not None and _open_on_purpose != API_OPEN:
    raise ImproperlyConfigured(
        "API_OPEN=1 contradicts API_TOKENS or API_AUTH, which close the API"
        if _open_on_purpose
        else "API_OPEN=0 needs API_TOKENS or API_AUTH=jwt to close the API"
    )
if PRODUCTION and API_OPEN and not _open_on_purpose:
    raise ImproperlyConfigured(
        "DJANGO_PRODUCTION=1 needs API_TOKENS or API_AUTH=jwt, or API_OPEN=1 to let anyone call the API"
    )

# JWT (API_AUTH=jwt; docs/api.md, "Authentication"): the service signs its own tokens for its Django users, unless
# JWT_JWKS_URL names an OAuth2/OIDC provider whose tokens it verifies instead; one issuer, so one user id is one person.
JWT_JWKS_URL = os.environ.get("JWT_JWKS_URL", "")
JWT_ISSUER = os.environ.get("JWT_ISSUER", "")
JWT_AUDIENCE = os.environ.get("JWT_AUDIENCE", "")
if JWT_JWKS_URL and "jwt" not in API_AUTH:
    raise ImproperlyConfigured("JWT_JWKS_URL is set, but API_AUTH does not name jwt")
if JWT_JWKS_URL and not (JWT_ISSUER and JWT_AUDIENCE):
    # Without both, a token the provider issued for another application, or another provider's, would pass.
    raise ImproperlyConfigured("JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE")
JWT_USER_CLAIM = os.environ.get("JWT_USER_CLAIM") or "sub"  # a provider's token: the claim naming its user
# A provider's token whose JWT_ADMIN_CLAIM (a space-separated string or a list) holds JWT_ADMIN_SCOPE sees every order.
JWT_ADMIN_CLAIM = os.environ.get("JWT_ADMIN_CLAIM") or "scope"
JWT_ADMIN_SCOPE = os.environ.get("JWT_ADMIN_SCOPE") or "orders:admin"
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_TOKEN_MINUTES", 5, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_REFRESH_TOKEN_MINUTES", 24 * 60, minimum=1)),
    # A provider's tokens have their own classes: verified against its JWKS, their user built from the claims alone.
    **(
        {
            "AUTH_TOKEN_CLASSES": ["order_system.tokens.ProviderAccessToken"],
            "TOKEN_USER_CLASS": "order_system.tokens.ProviderUser",
            "USER_ID_CLAIM": JWT_USER_CLAIM,
        }
        if JWT_JWKS_URL
        else {}
    ),
}

# Creating orders may be rate-limited per client, e.g. "100/s" or "5000/min"; unset, it is not. Password logins for a
# JWT are, per address, besides django-axes' lockouts.
ORDER_CREATE_RATE = env_rate("ORDER_CREATE_RATE")
JWT_LOGIN_RATE = env_rate("JWT_LOGIN_RATE", "30/min")

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["order_system.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "order_system.parsers.StrictContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # A bearer token is a service token's or a JWT; a staff member's admin session reads the API too (the dashboard).
    # The first scheme answers a missing or bad token with its WWW-Authenticate, which makes that a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        *(["order_system.auth.BearerTokenAuthentication"] if API_TOKENS else []),
        *(["order_system.tokens.JWTAuthentication"] if "jwt" in API_AUTH else []),
        *([] if API_OPEN else ["rest_framework.authentication.SessionAuthentication"]),
    ],
    "DEFAULT_PERMISSION_CLASSES": [] if API_OPEN else ["order_system.auth.HasApiToken"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"order_create": ORDER_CREATE_RATE, "jwt_login": JWT_LOGIN_RATE},
    # Behind the proxy, a client is the address it adds to X-Forwarded-For; otherwise the header is the client's own.
    "NUM_PROXIES": 1 if BEHIND_PROXY else 0,
    "EXCEPTION_HANDLER": "order_system.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Order Processing System",
    "DESCRIPTION": "Accepts orders, queues them and processes them in the background.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package: /api/docs/ works offline, with no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # drf-spectacular has no way to declare OpenAPI links, so a hook adds them (the first hook is the default).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "orders.apis.add_order_links"],
}

# Where accepted orders are processed (docs/architecture.md, docs/operations.md): a backend class by dotted path,
# or a short name for one of the three in orders/backends/.
QUEUE_BACKENDS = {
    "thread": "orders.backends.thread.ThreadBackend",  # this process's worker
    "celery": "orders.backends.celery.CeleryBackend",  # Celery workers
    "immediate": "orders.backends.immediate.ImmediateBackend",  # inline, right after the commit (tests and scripts)
}
ORDER_QUEUE_BACKEND = os.environ.get("ORDER_QUEUE_BACKEND") or "thread"
if "." not in ORDER_QUEUE_BACKEND and ORDER_QUEUE_BACKEND not in QUEUE_BACKENDS:
    raise ImproperlyConfigured(
        f"ORDER_QUEUE_BACKEND must be one of {', '.join(QUEUE_BACKENDS)} or a dotted path, not {ORDER_QUEUE_BACKEND!r}"
    )

for gone, instead in {
    "ORDER_WORKERS": "ORDER_CONCURRENCY (orders in flight per process) and ORDER_THREADS (threads for a plain-def "
    "processor)",
    "ORDER_LEASE_SECONDS": "ORDER_PROCESSING_TIMEOUT_SECONDS: the lease is that plus 10 s",
}.items():
    if gone in os.environ:
        raise ImproperlyConfigured(f"{gone} is no longer read; use {instead}")

# The work done for each order (docs/processors.md): the dotted path of a callable, async or plain.
ORDER_PROCESSOR = os.environ.get("ORDER_PROCESSOR") or "orders.processors.simulate"
ORDER_CONCURRENCY = env_int("ORDER_CONCURRENCY", 1000, minimum=1)  # orders in flight at once, per process
ORDER_THREADS = env_int("ORDER_THREADS", 16, minimum=1)  # per process; they run a plain-def processor
# An attempt still running after this long is a failed attempt (async work is cancelled).
ORDER_PROCESSING_TIMEOUT_SECONDS = env_float("ORDER_PROCESSING_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# A claim older than this is presumed abandoned by a dead worker: longer than any attempt, plus time to record it.
ORDER_LEASE_SECONDS = ORDER_PROCESSING_TIMEOUT_SECONDS + 10
ORDER_WORKER_AUTOSTART = env_optional_bool("ORDER_WORKER_AUTOSTART")  # unset: in processes that load order_system.wsgi
# The simulation's work (orders.processors.simulate).
ORDER_PROCESSING_SECONDS = env_seconds_range("ORDER_PROCESSING_SECONDS", "1-5")
ORDER_FAILURE_RATE = env_float("ORDER_FAILURE_RATE", 0.0, maximum=1.0)
# Fixes the simulated work's randomness (durations and failures), for reproducible runs.
ORDER_RANDOM_SEED = env_int("ORDER_RANDOM_SEED", 0) if os.environ.get("ORDER_RANDOM_SEED") else None
if ORDER_PROCESSOR == "orders.processors.simulate" and ORDER_PROCESSING_SECONDS[1] >= ORDER_PROCESSING_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "ORDER_PROCESSING_SECONDS must stay below ORDER_PROCESSING_TIMEOUT_SECONDS, or every long attempt times out"
    )
ORDER_MAX_ATTEMPTS = env_int("ORDER_MAX_ATTEMPTS", 3, minimum=1)
ORDER_RETRY_BACKOFF_SECONDS = env_float("ORDER_RETRY_BACKOFF_SECONDS", 1.0)  # 1 s, 2 s, 4 s, ... after each failure
ORDER_RETRY_BACKOFF_MAX_SECONDS = 300  # the backoff's cap; a processor's Retry(delay=...) may ask for more
ORDER_SWEEP_SECONDS = env_float("ORDER_SWEEP_SECONDS", 2.0, minimum=0.05)
ORDER_SHUTDOWN_GRACE_SECONDS = env_float("ORDER_SHUTDOWN_GRACE_SECONDS", 5.0)
# Celery mode: a PENDING order due this long without being claimed is presumed lost by the broker and sent again.
ORDER_REQUEUE_SECONDS = env_float("ORDER_REQUEUE_SECONDS", 300.0, minimum=1.0)
ORDER_IDEMPOTENCY_KEY_TTL_HOURS = env_int("ORDER_IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=24)

# Webhooks (docs/api.md, "Webhooks"): signed notices of order status changes, sent by each process's sender.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.1)  # an attempt's whole request
# A failed attempt is retried after WEBHOOK_RETRY_BACKOFF_SECONDS x 1, 2, 4, ... (at most 6 hours, with jitter): the
# default 16 attempts span about a day, as long as an endpoint may fail before it is disabled.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 16, minimum=1)
WEBHOOK_RETRY_BACKOFF_SECONDS = env_float("WEBHOOK_RETRY_BACKOFF_SECONDS", 5.0, minimum=0.01)
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = 6 * 3600
WEBHOOK_CONCURRENCY = env_int("WEBHOOK_CONCURRENCY", 100, minimum=1)  # requests in flight at once, per process
# Per endpoint and process, so an endpoint that hangs holds this many of the WEBHOOK_CONCURRENCY slots, not all.
WEBHOOK_ENDPOINT_CONCURRENCY = env_int("WEBHOOK_ENDPOINT_CONCURRENCY", 10, minimum=1)
# How often each sender looks for retries that have come due and deliveries another process left.
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 1.0, minimum=0.05)
# A delivery being sent longer than this is presumed abandoned by a dead sender and sent again: longer than an
# attempt, plus time to record it. Every process sharing a database must use the same timeout.
WEBHOOK_LEASE_SECONDS = WEBHOOK_TIMEOUT_SECONDS + 10
# After a rotation, deliveries are signed with the old secret too for this long, so receivers can switch over.
WEBHOOK_ROTATION_GRACE_SECONDS = env_float("WEBHOOK_ROTATION_GRACE_SECONDS", 24 * 3600.0)
# An endpoint whose attempts have all failed for this long is disabled.
WEBHOOK_DISABLE_AFTER = timedelta(hours=24)
# Deliveries that succeeded longer ago than this are deleted by prune_webhook_deliveries (docs/operations.md).
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 7, minimum=1)
# Where webhooks may go (webhooks/addresses.py): plain http, and private or local addresses, only when allowed.
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)

# Where the example processor, orders.examples.charge_payment, charges orders (docs/processors.md).
PAYMENT_SERVICE_URL = os.environ.get("PAYMENT_SERVICE_URL", "")

# Celery mode (order_system/celery.py; acks_late is set on the tasks themselves, DURABLE_TASK there).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# Deployments sharing a broker each need a queue of their own: a worker takes every task on its queue, and one whose
# database does not hold the order drops it.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE") or "celery"
# Webhook deliveries go through a queue of their own, so that workers can be set apart for them: a slow endpoint then
# holds none of the orders' slots. A worker takes both queues unless `-Q` names one (docs/operations.md).
WEBHOOK_CELERY_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}.webhooks"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, WEBHOOK_CELERY_QUEUE)
]
CELERY_TASK_ROUTES = {"webhooks.tasks.send_webhook": {"queue": WEBHOOK_CELERY_QUEUE}}
# Each worker process reserves one task at a time, so a backlog spreads over every worker and none hoards it.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request publishing an order tries the broker three times, then leaves the order to the sweep.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
# Redis delivers a task again once a worker has held it this long unacknowledged (the worker died): longer than a
# task runs, or waits to be retried by Celery after a database error (orders/tasks.py).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=600)}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# A form sent without its CSRF token gets the API's JSON 403, like every other refusal.
CSRF_FAILURE_VIEW = "order_system.errors.csrf_failure"

# Debug pages and error reports hide the password in any URL (CELERY_BROKER_URL, CACHES, PAYMENT_SERVICE_URL, ...).
DEFAULT_EXCEPTION_REPORTER_FILTER = "order_system.errors.CredentialsFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print every request warning a second time, beside the root's.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts, not a banner at every command or a line per check
    },
}
