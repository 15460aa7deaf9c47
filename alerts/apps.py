"""App config for the alerts app."""

import functools
from collections.abc import Callable

from django.apps import AppConfig


def _count_of(counts: Callable[[], dict[str, int]], name: str) -> float:
    """One entry of a count read at scrape time (0 when absent)."""
    return counts().get(name, 0)


class AlertsConfig(AppConfig):
    """Rules over tracked messages, and the channels they notify."""

    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Hear of tracked messages (for `any` rules), drop a removed user's rules and channels,
        and add the alerts' gauges to /metrics."""
        from accounts.services import user_removal_hook_register
        from alerts.evaluation import documents_match
        from alerts.models import Outcome, RuleState
        from alerts.selectors import deliveries_by_outcome, rules_by_state
        from alerts.services import user_alerts_forget
        from core.metrics import gauge_register
        from tracker.signals import documents_tracked

        documents_tracked.connect(documents_match, dispatch_uid="alerts.documents_match")
        user_removal_hook_register(user_alerts_forget)
        # core's gauges carry no labels: one gauge per state and per outcome instead.
        for state in RuleState.values:
            gauge_register(
                f"logger_alert_rules_{state}",
                f"Alert rules now in state {state}.",
                functools.partial(_count_of, rules_by_state, state),
            )
        for outcome in Outcome.values:
            gauge_register(
                f"logger_alert_deliveries_{outcome}",
                f"Alert delivery attempts that ended {outcome}, since the metrics were reset.",
                functools.partial(_count_of, deliveries_by_outcome, outcome),
            )
