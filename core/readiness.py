"""Readiness checks, registered by the app that owns each part, run by `/readyz`.

core owns Redis, the database and the queue; the tracker registers Elasticsearch from its
AppConfig. core therefore runs every check without knowing which apps exist.
"""

from collections.abc import Callable

Check = Callable[[], None]

_checks: dict[str, Check] = {}


def readiness_check_register(name: str, check: Check) -> None:
    """Add (or replace) the check of part `name`; it raises when the part is down."""
    _checks[name] = check


def readiness_checks() -> dict[str, Check]:
    """Every registered check by part name, in registration order."""
    return dict(_checks)
