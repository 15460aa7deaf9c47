"""Settings for pytest: fast hashing, separate Redis databases, a throwaway index alias."""

import os

from .base import *  # noqa: F403
from .base import CACHES, Q_CLUSTER, REDIS_URL, SIMPLE_JWT, STATIC_ROOT, VAR_DIR, env

SECRET_KEY = "test-secret-key"  # noqa: S105
JWT_SIGNING_KEY = "test-jwt-signing-key-0123456789abcdef"
SIMPLE_JWT["SIGNING_KEY"] = JWT_SIGNING_KEY
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _with_db(url: str, db: int) -> str:
    """Point a redis:// URL at another database number."""
    head, _, tail = url.rpartition("/")
    return f"{head}/{db}" if tail.isdigit() else f"{url.rstrip('/')}/{db}"


# Tests flush these two databases (the store's and the next one, for the cache); they never
# touch the ones `make up` uses. TEST_REDIS_URL picks others, e.g. for two suites at once.
REDIS_URL = env("TEST_REDIS_URL", default=_with_db(REDIS_URL, 14))
REDIS_CACHE_URL = _with_db(REDIS_URL, int(REDIS_URL.rpartition("/")[2]) + 1)
CACHES["default"]["LOCATION"] = REDIS_CACHE_URL
CACHES["store"]["LOCATION"] = REDIS_URL
# Never a REDIS_CLUSTER_NODES from the environment (the tests flush the store): a cluster only
# when asked for by name, to run the suite on one.
REDIS_CLUSTER_NODES = env.list("TEST_REDIS_CLUSTER_NODES", default=[])
_REDIS_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 3}
CACHES["default"]["OPTIONS"]["CONNECTION_POOL_KWARGS"].update(_REDIS_TIMEOUTS)
CACHES["store"]["OPTIONS"]["CONNECTION_POOL_KWARGS"].update(_REDIS_TIMEOUTS)

# One index alias and queue name per test session, deleted afterwards. They go into the
# environment so that a qcluster the tests start in a subprocess uses the same ones.
os.environ.setdefault("TRACKER_INDEX_ALIAS", f"test-messages-{os.getpid()}")
os.environ.setdefault("Q_CLUSTER_NAME", f"test{os.getpid()}")
TRACKER_INDEX_ALIAS = os.environ["TRACKER_INDEX_ALIAS"]
Q_CLUSTER["name"] = os.environ["Q_CLUSTER_NAME"]
ELASTICSEARCH_TIMEOUT = 5.0
# One lane: which tracker partition, and so which drain and bulk, a document goes to would
# otherwise hang on its message id's hash, and a test's drain and bulk counts with it. The
# tests of lanes set their own; `make e2e`, `make faults` and the bench run the default.
QUEUE_INBOX_LANES = {"tracker": 1}
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'test.sqlite3'}")}
STORAGES = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
