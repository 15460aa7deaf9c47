"""Queue entry points of the alerts app (django-q2 task names point here)."""

from typing import Any

from alerts.evaluation import evaluate_chain_step, evaluate_chain_wake, group_flush
from alerts.notifications import delivery_run
from alerts.services import user_alerts_delete


def alerts_deliver(
    *, channel_id: str, rule_id: str, notification: dict[str, Any], attempt: int
) -> str | None:
    """Deliver one notification to one channel (one attempt; retries queue themselves)."""
    return delivery_run(
        channel_id=channel_id, rule_id=rule_id, notification=notification, attempt=attempt
    )


def alerts_group_flush(*, rule_id: str) -> int:
    """Send the matches an `any` rule gathered over the last few seconds as one notification."""
    return group_flush(rule_id=rule_id)


def alerts_evaluate(*, token: str) -> bool:
    """Evaluate the `count` rules, then schedule the next evaluation."""
    return evaluate_chain_step(token=token)


def alerts_wake() -> bool:
    """Every minute (django-q2 schedule): restart the evaluation chain if it died."""
    return evaluate_chain_wake()


def alerts_user_delete(*, user_id: str) -> int:
    """Delete a removed user's rules and channels (queued by accounts' user removal)."""
    return user_alerts_delete(user_id=user_id)
