"""The alerts API: CRUD, scoping to the owner, validation, SSRF refusals and key scopes."""

import uuid

import pytest
from model_bakery import baker

from accounts.services import api_key_create, user_delete
from alerts.models import Channel, Event, Rule
from alerts.serializers import THRESHOLD_REQUIRED, UNKNOWN_CHANNELS
from alerts.services import USER_DELETE_TASK
from alerts.targets import URL_REFUSED
from tests.alerts.conftest import run_queued

pytestmark = pytest.mark.django_db

RULES = "/api/alerts/rules/"
CHANNELS = "/api/alerts/channels/"
PUBLIC_HOOK = "https://93.184.215.14/hook"  # a public address: no DNS needed


def _channel(client, **fields) -> dict:
    body = {"name": "ops", "type": "webhook", "url": PUBLIC_HOOK, **fields}
    response = client.post(CHANNELS, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _rule(client, **fields) -> dict:
    body = {"name": "errors", "query": "severity:error", "condition": {"type": "any"}, **fields}
    response = client.post(RULES, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_rule_is_created_with_its_state_listed_changed_and_deleted(auth_client) -> None:
    channel = _channel(auth_client, secret="s3cret")
    assert channel["has_secret"] is True
    assert "secret" not in channel

    rule = _rule(
        auth_client,
        condition={"type": "count", "threshold": 10, "window_s": 300},
        channels=[channel["id"]],
    )

    assert rule["state"] == "ok"
    assert rule["condition"] == {"type": "count", "threshold": 10, "below": False, "window_s": 300}
    assert rule["channels"] == [channel["id"]]
    assert [r["id"] for r in auth_client.get(RULES).json()] == [rule["id"]]
    changed = auth_client.patch(f"{RULES}{rule['id']}/", {"name": "renamed"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["name"] == "renamed"
    assert changed.json()["channels"] == [channel["id"]]  # what the PATCH left out stays
    assert auth_client.delete(f"{RULES}{rule['id']}/").status_code == 204
    assert auth_client.get(f"{RULES}{rule['id']}/").status_code == 404


def test_another_users_rules_and_channels_are_404_and_cannot_be_referenced(
    auth_client, make_user, client_for
) -> None:
    other = client_for(make_user("bob0001"))
    theirs = _channel(other)
    their_rule = _rule(other)

    for path in (f"{CHANNELS}{theirs['id']}/", f"{RULES}{their_rule['id']}/"):
        assert auth_client.get(path).status_code == 404
        assert auth_client.patch(path, {"name": "x"}, format="json").status_code == 404
        assert auth_client.delete(path).status_code == 404
    assert auth_client.post(f"{CHANNELS}{theirs['id']}/test/").status_code == 404
    assert auth_client.get(f"{RULES}{their_rule['id']}/events/").status_code == 404
    assert auth_client.get(RULES).json() == []

    response = auth_client.post(
        RULES,
        {"name": "x", "query": "", "condition": {"type": "any"}, "channels": [theirs["id"]]},
        format="json",
    )
    # 422: which channels are yours is stored state, which no schema can state.
    assert response.status_code == 422
    assert response.json() == {"channels": [UNKNOWN_CHANNELS.format(ids=theirs["id"])]}


@pytest.mark.parametrize(
    ("body", "field", "message", "status"),
    [
        # A query the language refuses: a 400 naming the position, as on every read.
        ({"query": "message:(a OR"}, "query", "at position 13", 400),
        ({"query": "user_id:abc"}, "query", "only an admin may filter by user", 400),
        ({"query": "nosuch:1"}, "query", "unknown field 'nosuch' at position 0", 400),
        ({"condition": {"type": "count"}}, "condition", THRESHOLD_REQUIRED, 400),
        ({"condition": {"type": "often"}}, "condition", "is not a valid choice", 400),
        ({"repeat_s": 5}, "repeat_s", "0 (never repeat)", 400),
        ({"channels": ["nope"]}, "channels", "valid UUID", 400),
        ({"name": 5}, "name", "Not a valid string", 400),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(
    auth_client, body, field, message, status
) -> None:
    full = {"name": "r", "query": "", "condition": {"type": "any"}, **body}

    response = auth_client.post(RULES, full, format="json")

    assert response.status_code == status
    assert message in str(response.json()[field])


def test_an_admin_may_use_user_id_in_a_rule(admin_client) -> None:
    assert _rule(admin_client, query=f"user_id:{uuid.uuid4()}")["state"] == "ok"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://localhost/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ],
)
def test_a_webhook_on_a_private_address_is_refused_at_save(auth_client, url, kind) -> None:
    response = auth_client.post(
        CHANNELS, {"name": "x", "type": "webhook", "url": url}, format="json"
    )

    # 422: where a host resolves is the network's answer, which no schema can state.
    assert response.status_code == 422
    (message,) = response.json()["url"]
    assert f"a {kind} address" in message
    assert message.startswith(URL_REFUSED.split("{")[0])


def test_allow_private_targets_lets_a_loopback_webhook_through(auth_client, settings) -> None:
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True

    assert _channel(auth_client, url="http://127.0.0.1:9/hook")["url"].endswith(":9/hook")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "webhook"}, "url"),
        ({"type": "webhook", "url": "ftp://93.184.215.14/"}, "url"),
        ({"type": "webhook", "url": "http://"}, "url"),
        ({"type": "webhook", "url": "http://[::1"}, "url"),
        ({"type": "email"}, "to"),
        ({"type": "email", "to": "not-an-address"}, "to"),
        ({"type": "email", "to": "a@example.com", "url": PUBLIC_HOOK}, "url"),
        ({"type": "sms", "to": "a@example.com"}, "type"),
    ],
)
def test_an_invalid_channel_is_a_400_naming_the_field(auth_client, body, field) -> None:
    response = auth_client.post(CHANNELS, {"name": "c", **body}, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_a_patch_changing_a_channels_type_is_validated_as_a_whole(auth_client) -> None:
    channel = _channel(auth_client, secret="abc")
    path = f"{CHANNELS}{channel['id']}/"

    # 422: the PATCH is refused for the type the channel has, which no schema of it knows.
    assert auth_client.patch(path, {"type": "email"}, format="json").status_code == 422
    changed = auth_client.patch(path, {"type": "email", "to": "ops@example.com"}, format="json")

    assert changed.status_code == 200
    assert changed.json() | {"id": None, "created": None} == {
        "id": None,
        "name": "ops",
        "type": "email",
        "url": "",
        "to": "ops@example.com",
        "has_secret": False,
        "created": None,
    }


def test_an_api_key_needs_the_alerts_scope(api_client, user) -> None:
    with_scope = api_key_create(user_id=user["user_id"], name="a", scopes=["alerts"])["key"]
    without = api_key_create(user_id=user["user_id"], name="b", scopes=["read"])["key"]

    assert api_client.get(RULES, HTTP_X_API_KEY=with_scope).status_code == 200
    refused = api_client.get(RULES, HTTP_X_API_KEY=without)
    assert refused.status_code == 403
    assert "alerts" in refused.json()["detail"]


def test_a_key_can_be_created_with_the_alerts_scope(auth_client) -> None:
    response = auth_client.post(
        "/api/auth/keys/", {"name": "ci", "scopes": ["alerts"]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["scopes"] == ["alerts"]


def test_events_are_listed_newest_first_with_a_limit(auth_client, user) -> None:
    rule = baker.make(Rule, user_id=user["user_id"], condition_type="any")
    baker.make(Event, rule=rule, kind="state", state="firing", _quantity=3)
    newest = baker.make(Event, rule=rule, kind="delivery", state="firing", outcome="delivered")

    response = auth_client.get(f"{RULES}{rule.pk}/events/", {"limit": 2})

    assert response.status_code == 200
    assert len(response.json()) == 2
    assert response.json()[0]["id"] == newest.pk
    assert auth_client.get(f"{RULES}{rule.pk}/events/", {"limit": 0}).status_code == 400


def test_a_channel_built_by_bakery_is_listed_for_its_owner_only(auth_client, user) -> None:
    baker.make(Channel, user_id=user["user_id"], type="email", to="a@example.com")
    baker.make(Channel, user_id=str(uuid.uuid4()), type="email", to="b@example.com")

    assert [c["to"] for c in auth_client.get(CHANNELS).json()] == ["a@example.com"]


def test_a_user_at_the_most_channels_allowed_gets_a_422(auth_client, monkeypatch) -> None:
    # What is stored refuses it, which no schema can state: 400 is for breaking the schema.
    monkeypatch.setattr("alerts.services.CHANNELS_MAX_PER_USER", 1)
    _channel(auth_client)

    response = auth_client.post(
        CHANNELS, {"name": "x", "type": "email", "to": "a@example.com"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (422, "limit_reached")


def test_a_deleted_users_rules_and_channels_go_with_them(make_user) -> None:
    gone, kept = make_user("gone002"), make_user("kept002")
    for owner in (gone, kept):
        channel = baker.make(Channel, user_id=owner["user_id"], type="email", to="a@example.com")
        rule = baker.make(Rule, user_id=owner["user_id"], name="r", query="x", window_s=60)
        rule.channels.set([channel])
        Event.objects.create(rule=rule, kind="state", state="firing")

    user_delete(username=gone["username"])
    assert Rule.objects.filter(user_id=gone["user_id"]).exists()  # until the task runs
    run_queued(USER_DELETE_TASK)

    assert not Rule.objects.filter(user_id=gone["user_id"]).exists()
    assert not Channel.objects.filter(user_id=gone["user_id"]).exists()
    assert Rule.objects.filter(user_id=kept["user_id"]).count() == 1
    assert Channel.objects.filter(user_id=kept["user_id"]).count() == 1
    assert Event.objects.count() == 1  # the kept rule's history only
