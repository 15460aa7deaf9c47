"""Settings shared by every environment; the environment is read here, through one `env`."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.version import project_version

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Secrets have no default here: local and test settings supply throwaway ones, production
# settings demand them from the environment.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "core",  # first, so its qcluster command wraps django-q2's
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "accounts",
    "pusher",
    "validator",
    "tracker",
    "shippers",
    "alerts",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.ChunkedBodyMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# SQLite holds only Django's own tables and django-q2's; DATABASE_URL switches to Postgres.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis -------------------------------------------------------------------------------
# REDIS_URL is the store: users, counters, revocations, idempotency keys and the task queue.
# The cache lives in another database so that a cache.clear() can never wipe the store.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_CACHE_URL = env("REDIS_CACHE_URL", default="redis://127.0.0.1:6379/1")
# host:port of a Redis Cluster's seed nodes, comma-separated: the store is then that cluster
# (database 0 only) and REDIS_URL is not used. The cache stays on REDIS_CACHE_URL, one Redis.
REDIS_CLUSTER_NODES = env.list("REDIS_CLUSTER_NODES", default=[])
_REDIS_POOL = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 30,
    "retry_on_timeout": False,
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "OPTIONS": {"CONNECTION_POOL_KWARGS": _REDIS_POOL},
    },
    "store": {
        "BACKEND": "core.redis.StoreCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"CONNECTION_POOL_KWARGS": {**_REDIS_POOL, "decode_responses": True}},
    },
}

# --- Elasticsearch -----------------------------------------------------------------------
# One URL, or the nodes of one cluster separated by commas (a comma inside a password is
# written %2C): the client spreads requests over them and skips a node that is down.
ELASTICSEARCH_URL = env.list("ELASTICSEARCH_URL", default=["http://127.0.0.1:9200"])
ELASTICSEARCH_TIMEOUT = env.float("ELASTICSEARCH_TIMEOUT", default=10.0)
# The alias every read and write goes through; the versioned index behind it can be swapped.
TRACKER_INDEX_ALIAS = env("TRACKER_INDEX_ALIAS", default="messages")
TRACKER_REFRESH_INTERVAL = env("TRACKER_REFRESH_INTERVAL", default="1s")
TRACKER_INDEX_REPLICAS = env.int("TRACKER_INDEX_REPLICAS", default=0)
# Messages live in one index per month; prune_messages (daily) drops the months that lie
# entirely past this many days. 0 keeps everything for ever.
TRACKER_RETENTION_DAYS = env.int("TRACKER_RETENTION_DAYS", default=0)
# How far back a client may date a message it tracks (core.contract.created_time_error).
TRACKER_MAX_AGE_DAYS = env.int("TRACKER_MAX_AGE_DAYS", default=3650)

# --- Auth --------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["accounts.backends.RedisUserBackend"]
# The first hasher makes every new hash; the others only verify old ones, which a successful
# login then rewrites with the first (accounts.backends). PBKDF2 stays for hashes made before.
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "accounts.hashers.Argon2idPasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ],
)
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY", default="")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_LIFETIME_SECONDS", default=900)),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env.int("JWT_REFRESH_LIFETIME_SECONDS", default=86400)
    ),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "user_id",
    "USER_ID_CLAIM": "user_id",
    "TOKEN_USER_CLASS": "accounts.tokens.RedisTokenUser",
    "ROTATE_REFRESH_TOKENS": True,
    "UPDATE_LAST_LOGIN": False,
}

# --- DRF ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # People log in for access tokens; machines use API keys, limited by scope per view.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.RevocableJWTAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.KeyScopeRequired",
    ],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # How many proxies sit in front (nginx in compose): without it a client could dodge the
    # login throttle by forging X-Forwarded-For.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    # Failed logins only (accounts.throttling): per username and address, and per address
    # across every username (password spraying).
    "DEFAULT_THROTTLE_RATES": {
        "login": env("THROTTLE_LOGIN", default="10/min"),
        "login_address": env("THROTTLE_LOGIN_ADDRESS", default="30/hour"),
        "register": env("THROTTLE_REGISTER", default="20/hour"),
    },
}
# Body limits (SPEC "Limits"): 1 MB for ordinary requests, 5 MB for bulk.
MAX_BODY_BYTES = 1024 * 1024
MAX_BULK_BODY_BYTES = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BULK_BODY_BYTES + 1

# pyproject.toml holds the one version; the schema and /readyz show it.
PROJECT_VERSION = project_version()

SPECTACULAR_SETTINGS = {
    "TITLE": "Python Logger API",
    "DESCRIPTION": (
        "Push messages, watch them pass an asynchronous validator, and search them in "
        "Elasticsearch. Log in at /api/auth/login/, then authorize with the access token."
    ),
    "VERSION": PROJECT_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its pages are public: a stale token in the browser must not 401 them.
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two choice sets are both called `type` (a channel's and a condition's): named here.
    "ENUM_NAME_OVERRIDES": {
        "AlertChannelTypeEnum": "alerts.models.ChannelType",
        "AlertConditionTypeEnum": "alerts.models.ConditionType",
    },
}

# --- Security headers and probes ----------------------------------------------------------
# SecurityMiddleware sends these on every response. HSTS is off unless set: a browser that saw
# it once refuses plain HTTP to the host for that long, which would break local runs. Django
# sends it only on HTTPS requests (gunicorn marks them from nginx's X-Forwarded-Proto).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# The HTML pages (Swagger UI, Redoc; the dashboard sends its own) load only this origin's
# assets and run no inline script (core.middleware.ContentSecurityPolicyMiddleware sends it).
# Swagger UI draws its icons as data: images; Redoc runs its search in a blob: worker. Redoc's
# styles are <style> elements: the empty one that styled-components fills through the CSSOM
# (which the policy does not govern) is allowed by the empty string's hash, and the one with
# perfect-scrollbar's CSS (drf-spectacular-sidecar 2026.10.1) by its own hash;
# e2e/test_swagger_ui.py fails if an upgrade changes it (Chromium names the new hash).
REDOC_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' "
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
)
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {REDOC_STYLE_HASHES}; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# GET /metrics wants `Authorization: Bearer <METRICS_TOKEN>` when one is set. Without one it is
# open here (development) and answers 404 in production (METRICS_TOKEN_REQUIRED).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_TOKEN_REQUIRED = False

# --- Queue -------------------------------------------------------------------------------
Q_CLUSTER = {
    "name": env("Q_CLUSTER_NAME", default="logger"),
    "workers": env.int("Q_WORKERS", default=2),
    "broker_class": "core.broker.ReliableRedisBroker",
    "django_redis": "store",
    # django-q2 kills a task after `timeout`. Redelivery is the broker's own (a short
    # visibility deadline kept alive by the cluster's heartbeat, below); `retry` only has to
    # exceed `timeout` for django-q2's own checks.
    "timeout": 30,
    "retry": 45,
    "max_attempts": 0,
    "save_limit": -1,  # successes are not stored: the documents in Elasticsearch are the record
    "ack_failures": False,
    # A small prefetch: a reserved task starts almost at once, so its visibility deadline
    # counts from about when it starts. One task drains a whole batch, so few are needed.
    "queue_limit": 4,
    "bulk": 2,
    "poll": 0.2,
    "guard_cycle": 0.5,
    "catch_up": False,
    "orm": None,
}
# How long an idle cluster waits before asking the broker again (bounds pickup latency).
QUEUE_IDLE_POLL_SECONDS = 0.05
# A reservation lapses this long after the cluster's last heartbeat; the cluster beats every
# QUEUE_HEARTBEAT_SECONDS. So a whole cluster killed at once has its tasks redelivered within
# 5 s (SPEC R2 allows 10 s for the whole recovery), while a live cluster can miss four beats
# in a row (a stalled sentinel) before anything of its own is handed out again.
QUEUE_VISIBILITY_SECONDS = 5
QUEUE_HEARTBEAT_SECONDS = 1
# A task handed out this often without an acknowledgement is set aside with its payload.
QUEUE_MAX_DELIVERIES = 5
# An inbox item taken this often without its drain finishing goes to the dead letter.
QUEUE_ITEM_MAX_TAKES = 5
# An item the handler keeps refusing "for now" is retried with backoff up to this cap, and
# dead-lettered once it has failed for QUEUE_RETRY_MAX_SECONDS (default 24 h).
QUEUE_RETRY_CAP_SECONDS = 10.0
QUEUE_RETRY_MAX_SECONDS = env.int("QUEUE_RETRY_MAX_SECONDS", default=24 * 60 * 60)
# A drain task takes batch after batch of its partition for at most this long, then hands the
# rest to a new task: the other partitions' drains wait for a worker at most this long.
QUEUE_DRAIN_SLICE_SECONDS = 1.0
# A batch is cut at this many bytes, whatever its count: big messages on a slow node.
QUEUE_BATCH_MAX_BYTES = 4 * 1024 * 1024
# Users map to this many partitions; each partition's keys share one Redis Cluster slot, and
# each partition of an inbox has its own lease and drain chain. Fixed for a deployment: the
# first process records it in Redis, and another count is refused (docs/scaling.md).
QUEUE_PARTITIONS = env.int("QUEUE_PARTITIONS", default=64)
if not 1 <= QUEUE_PARTITIONS <= 1024:
    raise ImproperlyConfigured("QUEUE_PARTITIONS must be between 1 and 1024.")
# Batched hand-offs between services: inbox name -> the queue task that drains it.
QUEUE_INBOXES = {
    "validator": "validator.tasks.validator_inbox_drain",
    "retry": "validator.tasks.validator_retry_drain",
    "tracker": "tracker.tasks.tracker_inbox_drain",
    # Syslog lines the listener could not read; a replay reads them again (pusher.tasks).
    "syslog": "pusher.tasks.syslog_inbox_drain",
}
# An inbox whose items need no per-user order spreads each user's items over this many
# partitions (by message id), so that one busy user's documents are indexed by parallel drains:
# one drain alternates its Python work with its bulk's wait, two overlap them.
QUEUE_INBOX_LANES = {"tracker": env.int("TRACKER_LANES", default=2)}
if not 1 <= QUEUE_INBOX_LANES["tracker"] <= QUEUE_PARTITIONS:
    raise ImproperlyConfigured("TRACKER_LANES must be between 1 and QUEUE_PARTITIONS.")
# Per-user ingestion rate limit over messages, shared by push, batch push and OTLP: a token
# bucket refilled at INGEST_RATE_PER_SECOND, holding at most INGEST_BURST.
INGEST_RATE_PER_SECOND = env.float("INGEST_RATE_PER_SECOND", default=5000.0)
INGEST_BURST = env.int("INGEST_BURST", default=10_000)
# The syslog listener (manage.py syslog_listen, docs/syslog.md): RFC 5424 and RFC 3164 over TCP
# and UDP, its messages owned by the API key SYSLOG_API_KEY (scope push); without one it does
# not start. Its queue into the pipeline holds at most SYSLOG_QUEUE_SIZE messages (then TCP
# waits and UDP drops), handed on in batches of SYSLOG_BATCH_SIZE or every SYSLOG_BATCH_MS.
SYSLOG_HOST = env("SYSLOG_HOST", default="127.0.0.1")
SYSLOG_PORT = env.int("SYSLOG_PORT", default=5514)
SYSLOG_API_KEY = env("SYSLOG_API_KEY", default="")
SYSLOG_QUEUE_SIZE = env.int("SYSLOG_QUEUE_SIZE", default=10_000)
SYSLOG_BATCH_SIZE = env.int("SYSLOG_BATCH_SIZE", default=500)
SYSLOG_BATCH_MS = env.int("SYSLOG_BATCH_MS", default=200)
# A longer message is cut (and marked truncated); 8 KiB is rsyslog's default maximum.
SYSLOG_MAX_MESSAGE_BYTES = env.int("SYSLOG_MAX_MESSAGE_BYTES", default=8192)
# Live tail: each user's Redis Stream of tracked messages keeps about this many entries
# (the window a reconnecting client can resume within); the admins' stream holds everyone's.
TAIL_STREAM_MAXLEN = env.int("TAIL_STREAM_MAXLEN", default=10_000)
TAIL_ADMIN_STREAM_MAXLEN = env.int("TAIL_ADMIN_STREAM_MAXLEN", default=100_000)
# An open tail stream sends a comment after this many quiet seconds, so proxies keep it open.
TAIL_KEEPALIVE_SECONDS = env.float("TAIL_KEEPALIVE_SECONDS", default=15.0)
# A browser's EventSource ticket (POST .../tail/ticket/) is good for one stream, this long.
TAIL_TICKET_SECONDS = env.int("TAIL_TICKET_SECONDS", default=30)
# An event goes out this long after its refresh interval has passed since it was indexed, so
# it is searchable when it arrives (Elasticsearch's refresh itself takes a few milliseconds).
TAIL_SEARCHABLE_MARGIN_SECONDS = 0.1
# Where the pusher and the validator draw their numbers; tests point it at a scripted source.
VALIDATOR_RANDOM_SOURCE = env("VALIDATOR_RANDOM_SOURCE", default="core.randomness.draw_number")
VALIDATOR_RETRY_DELAY_SECONDS = 4.0

# --- Alerts ------------------------------------------------------------------------------
# Webhook targets on loopback, private, link-local or metadata addresses are refused (SSRF)
# unless this is on: for tests and on-premises receivers.
ALERT_ALLOW_PRIVATE_TARGETS = env.bool("ALERT_ALLOW_PRIVATE_TARGETS", default=False)
# A hanging receiver holds a queue worker at most this long per attempt.
ALERT_DELIVERY_TIMEOUT_SECONDS = env.float("ALERT_DELIVERY_TIMEOUT_SECONDS", default=5.0)
# Retries wait 10 s, 20 s, 40 s ... (each at most an hour); the last attempt's failure is a
# dead letter (an Event with outcome "dead"): about 85 minutes after the first.
ALERT_DELIVERY_MAX_ATTEMPTS = env.int("ALERT_DELIVERY_MAX_ATTEMPTS", default=10)
ALERT_DELIVERY_RETRY_SECONDS = 10.0
ALERT_DELIVERY_RETRY_CAP_SECONDS = 3600.0
# `any` rules: matches within this many seconds go out as one notification.
ALERT_GROUP_SECONDS = env.float("ALERT_GROUP_SECONDS", default=2.0)
# How long a process keeps its list of `any` rules before reading it again.
ALERT_RULES_CACHE_SECONDS = env.float("ALERT_RULES_CACHE_SECONDS", default=5.0)
# `count` rules are evaluated this often (a self-rescheduling queue task, kept alive by a
# django-q2 schedule every minute).
ALERT_EVALUATE_SECONDS = env.float("ALERT_EVALUATE_SECONDS", default=10.0)
# Where a notification's link points: the dashboard with the rule's query.
ALERT_LINK_BASE_URL = env("ALERT_LINK_BASE_URL", default="http://127.0.0.1:8000")
# History older than this is deleted once a minute.
ALERT_EVENTS_RETENTION_DAYS = env.int("ALERT_EVENTS_RETENTION_DAYS", default=30)
# Email channels go through Django's email backend, configured here.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = ALERT_DELIVERY_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="logger@localhost")

# --- Static files ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging -----------------------------------------------------------------------------
# One JSON object per line on stdout (LOG_FORMAT=plain for humans). Every line carries the
# request id; `user_id` and `message_id` ride along as `extra` where they are known.
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default console handler, which would print each line twice in DEBUG.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # django-q2 logs every task at INFO: that floods the log and slows enqueueing.
        "django-q": {"level": "WARNING"},
        # An outage is reported once as a 503 or a drain retry, not as a traceback per call.
        "elastic_transport": {"level": "ERROR"},
        "urllib3": {"level": "WARNING"},
    },
}
