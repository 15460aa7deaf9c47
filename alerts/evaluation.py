"""Evaluating rules: `any` rules as messages are tracked, `count` rules on a schedule.

`any` rules are matched in process with the query's own predicate (tracker.query.matches): no
Elasticsearch query per message. Each process keeps the parsed rules, and reads them again when
a rule was saved anywhere (a version number in Redis, one GET per tracked batch) or after a few
seconds (an owner's role may change). A
match is held in Redis per rule (a count and the latest samples), and the first match of a
group queues a flush a couple of seconds later, so a burst goes out as one notification.

`count` rules are evaluated by a chain of queue tasks, each scheduling the next
(ALERT_EVALUATE_SECONDS apart); a django-q2 schedule wakes the chain every minute if it died.
"""

import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task
from redis.exceptions import RedisError
from rest_framework.exceptions import ValidationError

from accounts.selectors import user_get
from alerts.delivery import SAMPLES_MAX, sample_of
from alerts.models import ConditionType, Event, Rule, RuleState
from alerts.notifications import rule_notify, rule_transition
from core.queue import async_task_in
from core.redis import StoreScript, store
from tracker.query import Filter, matches, query_parse, required_keyword
from tracker.scope import Actor
from tracker.selectors import messages_search

logger = logging.getLogger(__name__)

FLUSH_TASK = "alerts.tasks.alerts_group_flush"
EVALUATE_TASK = "alerts.tasks.alerts_evaluate"
CHAIN_KEY = "alerts:evaluate:chain"
# Ends the chain only if it is this one (another may have started meanwhile).
_CHAIN_END = StoreScript("lease_release")
# Moves the chain to its next link's token: a link runs once, however often it is delivered.
_CHAIN_ADVANCE = StoreScript("chain_advance")
# Held matches of a rule nobody flushes (its flush task lost) go after a day.
_HELD_SECONDS = 24 * 60 * 60
# A flush marker outlives its flush's due time by this much: if the task was lost, the next
# match after it lapses starts a new group and a new flush.
_FLUSH_MARK_SLACK_SECONDS = 30
# Raised at every rule change, so that every process reads the rules again at its next batch.
RULES_VERSION_KEY = "alerts:rules:version"


def _held_keys(rule_id: str) -> tuple[str, str, str]:
    # One hash tag per rule: the flush's MULTI stays within one Redis Cluster slot.
    prefix = f"alerts:any:{{{rule_id}}}"
    return f"{prefix}:count", f"{prefix}:samples", f"{prefix}:flush"


# --- `any` rules, in process -------------------------------------------------------------


@dataclass(frozen=True)
class ActiveRule:
    """An `any` rule, parsed, with whose messages it may see."""

    rule_id: str
    user_id: str
    admin: bool
    tree: Filter


def _index_value(value: object, case_insensitive: bool) -> str | int | None:
    """A keyword value as the index holds it: folded to lower case for a caseless field (whose
    values match only when ASCII, as `Keyword.test` has it)."""
    if case_insensitive:
        return value.lower() if isinstance(value, str) and value.isascii() else None
    return value if isinstance(value, str | int) else None


@dataclass
class _Indexed:
    """Rules indexed by a keyword value every match must hold, as a percolator does.

    A rule whose query requires, say, `service:checkout` is tested only against documents
    whose service is checkout; the rest (no such term) against every document.
    """

    everywhere: list[ActiveRule] = field(default_factory=list)
    by_value: dict[tuple[str, str | int], list[ActiveRule]] = field(default_factory=dict)
    fields: set[tuple[str, bool]] = field(default_factory=set)  # (field, caseless)

    def add(self, rule: ActiveRule) -> None:
        term = required_keyword(rule.tree)
        value = None if term is None else _index_value(term.value, term.case_insensitive)
        if term is None or value is None:
            self.everywhere.append(rule)
            return
        self.by_value.setdefault((term.field, value), []).append(rule)
        self.fields.add((term.field, term.case_insensitive))

    def __bool__(self) -> bool:
        return bool(self.everywhere or self.by_value)

    def candidates(self, document: dict[str, Any]) -> Iterable[ActiveRule]:
        """The rules `document` could match: a rule outside them cannot."""
        yield from self.everywhere
        for name, caseless in self.fields:
            held = document.get(name)
            for item in held if isinstance(held, list) else (held,):
                value = _index_value(item, caseless)
                if value is not None:
                    yield from self.by_value.get((name, value), ())


@dataclass
class _RuleSet:
    by_owner: dict[str, _Indexed] = field(default_factory=dict)
    admin: _Indexed = field(default_factory=_Indexed)
    expires: float = 0.0
    version: str | None = None

    def add(self, rule: ActiveRule) -> None:
        if rule.admin:
            self.admin.add(rule)
        else:
            self.by_owner.setdefault(rule.user_id, _Indexed()).add(rule)

    def for_document(self, document: dict[str, Any]) -> Iterable[ActiveRule]:
        """The rules whose owner may read `document` (its owner's, every admin's) and that
        it could match."""
        owner = document.get("user_id")
        if isinstance(owner, str) and owner in self.by_owner:
            yield from self.by_owner[owner].candidates(document)
        yield from self.admin.candidates(document)


_rules = _RuleSet()
_rules_lock = threading.Lock()


def _rules_load() -> _RuleSet:
    loaded = _RuleSet()
    rows = Rule.objects.filter(condition_type=ConditionType.ANY).values_list(
        "id", "user_id", "query"
    )
    roles: dict[str, str | None] = {}
    for rule_id, user_id, query in rows:
        if user_id not in roles:
            # The role is read now, not when the rule was saved: a demoted admin's rule no
            # longer sees everyone's messages. An erased owner's rule sees nothing.
            record = user_get(user_id=user_id)
            roles[user_id] = record.get("role") if record else None
        if roles[user_id] is None:
            continue
        admin = roles[user_id] == "admin"
        try:
            tree = query_parse(query, admin=admin)
        except ValidationError:
            logger.warning("Alert rule %s: its query no longer parses for its owner", rule_id)
            continue
        loaded.add(ActiveRule(str(rule_id), user_id, admin, tree))
    return loaded


def _rules_version() -> str | None:
    try:
        return store().get(RULES_VERSION_KEY)
    except RedisError:
        return _rules.version  # as it was: tracking must not wait for alerts


def rules_any_active() -> _RuleSet:
    """This process's `any` rules: read again after a change anywhere, or every few seconds."""
    global _rules
    now = time.monotonic()
    version = _rules_version()
    if now < _rules.expires and version == _rules.version:
        return _rules
    with _rules_lock:
        if now < _rules.expires and version == _rules.version:
            return _rules
        try:
            loaded = _rules_load()
        except (DatabaseError, OSError) as exc:
            # Keep the last list and try again later: tracking must not wait for alerts.
            logger.warning("Alert rules could not be read: %s", exc)
            loaded = _rules
        loaded.expires = now + settings.ALERT_RULES_CACHE_SECONDS
        loaded.version = version
        _rules = loaded
    return _rules


def rules_cache_clear() -> None:
    """Forget this process's rules: the next match reads them again."""
    _rules.expires = 0.0


def rules_changed() -> None:
    """A rule was saved or deleted: every process reads the rules again at its next batch."""
    store().incr(RULES_VERSION_KEY)
    rules_cache_clear()


def documents_match(*, documents: list[dict[str, Any]], **_: Any) -> int:
    """Match newly tracked `documents` against the `any` rules; hold the matches for a flush.

    Returns how many (rule, document) matches there were.
    """
    rules = rules_any_active()
    if not rules.by_owner and not rules.admin:
        return 0
    held: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in documents:
        for rule in rules.for_document(document):
            if matches(rule.tree, document):
                held[rule.rule_id].append(document)
    if held:
        _matches_hold(held)
    return sum(len(found) for found in held.values())


def _matches_hold(held: dict[str, list[dict[str, Any]]]) -> None:
    group_seconds = settings.ALERT_GROUP_SECONDS
    mark_ms = int((group_seconds + _FLUSH_MARK_SLACK_SECONDS) * 1000)
    pipe = store().pipeline(transaction=False)
    for rule_id, documents in held.items():
        count_key, samples_key, flush_key = _held_keys(rule_id)
        pipe.incrby(count_key, len(documents))
        pipe.expire(count_key, _HELD_SECONDS)
        pipe.rpush(samples_key, *(json.dumps(sample_of(d)) for d in documents[-SAMPLES_MAX:]))
        pipe.ltrim(samples_key, -SAMPLES_MAX, -1)  # the latest few
        pipe.expire(samples_key, _HELD_SECONDS)
        pipe.set(flush_key, "1", nx=True, px=mark_ms)
    replies = pipe.execute()
    for position, rule_id in enumerate(held):
        if replies[position * 6 + 5]:  # this batch opened the group: flush it in a moment
            async_task_in(group_seconds, FLUSH_TASK, rule_id=rule_id)


def group_flush(*, rule_id: str) -> int:
    """Send the matches held for an `any` rule as one notification; return their count."""
    count_key, samples_key, flush_key = _held_keys(rule_id)
    pipe = store().pipeline(transaction=True)
    pipe.get(count_key)
    pipe.lrange(samples_key, 0, -1)
    for key in (count_key, samples_key, flush_key):  # a cluster's pipeline DELs one key each
        pipe.delete(key)
    count, samples, *_ = pipe.execute()
    count = int(count or 0)
    rule = Rule.objects.filter(pk=rule_id).first()
    if not count or rule is None:
        return 0
    samples = [json.loads(sample) for sample in samples]
    now = timezone.now()
    if not rule_transition(
        rule=rule, state=RuleState.FIRING, count=count, samples=samples, now=now
    ):
        # Already firing: every group notifies (an `any` rule tells of every match).
        Rule.objects.filter(pk=rule.pk).update(last_fired=now, last_count=count)
        rule_notify(rule=rule, state=RuleState.FIRING, count=count, samples=samples)
    return count


# --- On a schedule -----------------------------------------------------------------------


def _count_rule_evaluate(rule: Rule, now: datetime) -> None:
    record = user_get(user_id=rule.user_id)
    if record is None:
        return  # the owner was erased: their rules see nothing any more
    found = messages_search(
        actor=Actor(user_id=rule.user_id, role=record.get("role", "user")),
        query=rule.query,
        date_from=now - timedelta(seconds=rule.window_s),
        date_to=now,
        page_size=SAMPLES_MAX,
        now=now,
    )
    count, samples = found["count"], found["results"]
    threshold = rule.threshold or 0
    holds = count <= threshold if rule.below else count >= threshold
    state = RuleState.FIRING if holds else RuleState.OK
    if rule_transition(
        rule=rule, state=state, count=count, samples=samples, now=now, last_evaluated=now
    ):
        return
    Rule.objects.filter(pk=rule.pk).update(last_evaluated=now, last_count=count)
    due = rule.last_notified is None or rule.last_notified + timedelta(seconds=rule.repeat_s) <= now
    if state == RuleState.FIRING and rule.repeat_s and due:
        rule_notify(rule=rule, state=state, count=count, samples=samples)


def rules_evaluate(*, now: datetime | None = None) -> int:
    """Evaluate every `count` rule, and resolve quiet `any` rules; return how many were seen."""
    now = now or timezone.now()
    seen = 0
    for rule in Rule.objects.filter(condition_type=ConditionType.COUNT):
        seen += 1
        try:
            _count_rule_evaluate(rule, now)
        except Exception:
            # One rule's failure (Elasticsearch away, a query its owner may no longer run)
            # must not stop the others; it is tried again at the next tick.
            logger.exception("Alert rule %s could not be evaluated", rule.pk)
    firing = Rule.objects.filter(condition_type=ConditionType.ANY, state=RuleState.FIRING)
    for rule in firing:
        seen += 1
        # An `any` rule is resolved once no message matched for its window.
        if rule.last_fired is None or rule.last_fired + timedelta(seconds=rule.window_s) <= now:
            rule_transition(rule=rule, state=RuleState.OK, count=0, samples=[], now=now)
    return seen


def _chain_ttl() -> int:
    return int(3 * settings.ALERT_EVALUATE_SECONDS) + 30


def _chain_needed() -> bool:
    """Whether any rule needs the schedule: a `count` rule, or an `any` rule still firing."""
    count = Q(condition_type=ConditionType.COUNT)
    firing = Q(condition_type=ConditionType.ANY, state=RuleState.FIRING)
    return Rule.objects.filter(count | firing).exists()


def evaluate_chain_step(*, token: str) -> bool:
    """One link of the evaluation chain: evaluate, then schedule the next; False if this link
    is not the chain's (another chain holds the key, or this link ran already)."""
    if not _chain_needed():
        # No rule to evaluate: the chain ends rather than keep a queue task waiting for ever
        # (an idle queue stays empty). A count rule's save or the minute's wake starts it.
        _CHAIN_END(keys=[CHAIN_KEY], args=[token])
        return False
    # Each link hands the next a token of its own. A redelivered link (its cluster stalled
    # past the visibility deadline) used to pass the check beside the original, and both
    # scheduled a successor: the chain doubled with every stall, for good.
    successor = uuid.uuid4().hex
    if _CHAIN_ADVANCE(keys=[CHAIN_KEY], args=[token, successor, _chain_ttl()]) != "advanced":
        return False
    try:
        rules_evaluate()
    finally:
        # Kept alive past a long evaluation, unless the key lapsed and a wake took over.
        if _CHAIN_ADVANCE(keys=[CHAIN_KEY], args=[successor, successor, _chain_ttl()]) == (
            "advanced"
        ):
            async_task_in(settings.ALERT_EVALUATE_SECONDS, EVALUATE_TASK, token=successor)
    return True


def evaluate_chain_wake() -> bool:
    """Start the evaluation chain unless one runs; prune old history. True if it started."""
    cutoff = timezone.now() - timedelta(days=settings.ALERT_EVENTS_RETENTION_DAYS)
    Event.objects.filter(at__lt=cutoff).delete()
    if not _chain_needed():
        return False
    token = uuid.uuid4().hex
    if not store().set(CHAIN_KEY, token, nx=True, ex=_chain_ttl()):
        return False
    async_task(EVALUATE_TASK, token=token)
    return True
