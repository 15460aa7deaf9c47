"""`manage.py alerts list | mute RULE --until ISO | test CHANNEL`: alerts for operators."""

from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts.models import Channel, Rule
from alerts.services import channel_test, rule_mute

NO_SUCH_RULE = "No rule with id {ref}."
NO_SUCH_CHANNEL = "No channel with id {ref}."
BAD_UNTIL = "--until must be an ISO 8601 date-time, e.g. 2030-01-01T12:00:00Z."


def _get(model: type[Rule] | type[Channel], ref: str, missing: str) -> Any:
    try:
        found = model.objects.filter(pk=ref).first()
    except ValidationError:  # not a UUID
        found = None
    if found is None:
        raise CommandError(missing.format(ref=ref))
    return found


class Command(BaseCommand):
    """Lists rules, mutes one, or tests a channel."""

    help = "List alert rules, mute one until a time, or send a test notification to a channel."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every rule: id, state, condition, owner, name.")
        mute = actions.add_parser("mute", help="Suppress a rule's notifications until a time.")
        mute.add_argument("rule", help="The rule's id.")
        group = mute.add_mutually_exclusive_group(required=True)
        group.add_argument("--until", help="ISO 8601 date-time (UTC unless it says otherwise).")
        group.add_argument("--off", action="store_true", help="Unmute.")
        test = actions.add_parser("test", help="Send one sample notification to a channel now.")
        test.add_argument("channel", help="The channel's id.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list()
        elif action == "mute":
            self._mute(options["rule"], options["until"], options["off"])
        else:
            self._test(options["channel"])

    def _list(self) -> None:
        for rule in Rule.objects.order_by("user_id", "created"):
            muted = f" muted until {rule.muted_until:%Y-%m-%dT%H:%M:%SZ}" if rule.muted() else ""
            self.stdout.write(
                f"{rule.pk}  {rule.state:<6} {rule.condition_type:<5} {rule.user_id}  "
                f"{rule.name}{muted}"
            )

    def _mute(self, ref: str, until_text: str | None, off: bool) -> None:
        rule = _get(Rule, ref, NO_SUCH_RULE)
        until = None
        if not off:
            until = parse_datetime(until_text or "")
            if until is None:
                raise CommandError(BAD_UNTIL)
            if timezone.is_naive(until):
                until = timezone.make_aware(until, UTC)
        rule_mute(rule=rule, until=until)
        self.stdout.write(
            f"{rule.name}: " + (f"muted until {until.isoformat()}" if until else "unmuted")
        )

    def _test(self, ref: str) -> None:
        result = channel_test(channel=_get(Channel, ref, NO_SUCH_CHANNEL))
        line = f"ok: {result['ok']} status: {result['status']} error: {result['error'] or '-'}"
        if not result["ok"]:
            raise CommandError(line)
        self.stdout.write(line)
