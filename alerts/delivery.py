"""Notifications and their channels: what a webhook or an email says, and sending it once.

Retries, dead letters and history are alerts.notifications' job; this module only builds a
notification and makes one attempt, with a short timeout, reporting how it went.
"""

import hashlib
import hmac
import json
import smtplib
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.utils import timezone

from alerts.models import Channel, ChannelType, Rule, RuleState
from alerts.targets import TargetRefused, target_resolve
from core.contract import date_format

SIGNATURE_HEADER = "X-Logger-Signature"
SAMPLES_MAX = 5
SAMPLE_MESSAGE_MAX = 500  # characters of each sample's message a notification carries
_SAMPLE_FIELDS = (
    "message_id",
    "user_id",
    "created_time",
    "category",
    "severity_text",
    "service_name",
    "user_message",
)
# Statuses a retry will not change: the receiver refuses this request as it is, for good.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 410})
_ERROR_MAX = 300


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt to notify one channel went."""

    ok: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False  # no later attempt can do better
    refused: bool = False  # the SSRF rule refused the target


def sample_of(document: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a tracked document a notification shows, its message shortened."""
    sample = {field: document[field] for field in _SAMPLE_FIELDS if field in document}
    message = sample.get("user_message")
    if isinstance(message, str) and len(message) > SAMPLE_MESSAGE_MAX:
        sample["user_message"] = message[: SAMPLE_MESSAGE_MAX - 1] + "…"
    return sample


def query_link(query: str) -> str:
    """The dashboard's explorer showing `query`."""
    return f"{settings.ALERT_LINK_BASE_URL.rstrip('/')}/dashboard/?{urlencode({'query': query})}"


def window_text(seconds: int) -> str:
    """`seconds` as people write a window: 90s, 5m, 2h, 1d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _slack_escape(text: str) -> str:
    # Slack's incoming webhooks read &, < and > as markup: escaped, they show as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _summary(rule: Rule, state: str, count: int) -> str:
    """One line saying what happened, without the link."""
    if rule.condition_type == "any":
        what = f"{count} new matching message{'s' if count != 1 else ''}"
        if state == RuleState.OK:
            what = f"no matching message for {window_text(rule.window_s)}"
    else:
        bound = "at most" if rule.below else "at least"
        what = (
            f"{count} match{'es' if count != 1 else ''} in the last "
            f"{window_text(rule.window_s)} (threshold: {bound} {rule.threshold})"
        )
    label = "FIRING" if state == RuleState.FIRING else "RESOLVED"
    return f"[{label}] {rule.name}: {what}"


def notification_build(
    *, rule: Rule, state: str, count: int, samples: list[dict[str, Any]]
) -> dict[str, Any]:
    """The webhook body (emails say the same): Slack-compatible `text` and the details."""
    link = query_link(rule.query)
    summary = _summary(rule, state, count)
    return {
        # Receivers can drop a repeat by this id: delivery is at least once.
        "id": uuid.uuid4().hex,
        "text": f"{_slack_escape(summary)} {link}",
        "rule": {"id": str(rule.id), "name": rule.name, "query": rule.query},
        "state": state,
        "count": count,
        "window_s": rule.window_s,
        "samples": [sample_of(sample) for sample in samples[:SAMPLES_MAX]],
        "link": link,
        "at": date_format(timezone.now()),
        "summary": summary,
    }


def body_sign(*, secret: str, body: bytes) -> str:
    """The X-Logger-Signature value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _webhook_send(channel: Channel, body: bytes, timeout: float) -> AttemptResult:
    try:
        target = target_resolve(channel.url, allow_private=settings.ALERT_ALLOW_PRIVATE_TARGETS)
    except TargetRefused as exc:
        return AttemptResult(False, error=str(exc), permanent=exc.permanent, refused=exc.permanent)
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": "python-logger-alerts/1",
    }
    if channel.secret:
        headers[SIGNATURE_HEADER] = body_sign(secret=channel.secret, body=body)
    # The checked address, not the name: a second lookup could answer otherwise.
    pool_options: dict[str, Any] = {
        "timeout": urllib3.Timeout(total=timeout),
        "retries": False,
        "maxsize": 1,
    }
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            **pool_options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **pool_options)
    try:
        with pool:
            # No redirects: one could point at an address the check above would refuse.
            response = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        return AttemptResult(False, error=f"{type(exc).__name__}: {exc}"[:_ERROR_MAX])
    status = response.status
    if 200 <= status < 300:
        return AttemptResult(True, status=status)
    reason = response.data[:_ERROR_MAX].decode("utf-8", "replace").strip()
    return AttemptResult(
        False,
        status=status,
        error=f"HTTP {status}" + (f": {reason}" if reason else ""),
        permanent=status in PERMANENT_STATUSES,
    )


def _email_send(channel: Channel, notification: dict[str, Any], timeout: float) -> AttemptResult:
    lines = [notification["summary"], "", f"Query: {notification['rule']['query'] or '(all)'}"]
    for sample in notification["samples"]:
        lines.append(f"- {sample.get('created_time', '')} {sample.get('user_message', '')}")
    lines += ["", notification["link"]]
    try:
        send_mail(
            subject=notification["summary"][:150],
            message="\n".join(lines),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[channel.to],
            connection=get_connection(timeout=timeout),
        )
    except smtplib.SMTPRecipientsRefused as exc:
        return AttemptResult(False, error=f"recipient refused: {exc}"[:_ERROR_MAX], permanent=True)
    except (smtplib.SMTPException, OSError) as exc:
        return AttemptResult(False, error=f"{type(exc).__name__}: {exc}"[:_ERROR_MAX])
    return AttemptResult(True)


def channel_send(
    *, channel: Channel, notification: dict[str, Any], timeout: float | None = None
) -> AttemptResult:
    """Send `notification` to `channel` once, giving up after `timeout` seconds."""
    timeout = timeout or settings.ALERT_DELIVERY_TIMEOUT_SECONDS
    if channel.type == ChannelType.EMAIL:
        return _email_send(channel, notification, timeout)
    body = json.dumps(notification, separators=(",", ":"), ensure_ascii=False).encode()
    return _webhook_send(channel, body, timeout)
