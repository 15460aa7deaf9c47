"""Body-size (413) and Content-Type (415) limits hold over real HTTP, chunked bodies included."""

import json

from faults.api import Accounts, Api
from faults.probes import record

MB = 1024 * 1024
PUSH = "/api/pusher/push/"
TRACK = "/api/tracker/messages/"
BULK = "/api/tracker/messages/bulk/"


def _padded(size: int, **fields: object) -> bytes:
    """A JSON object with `fields` plus padding, exactly `size` bytes long."""
    empty = json.dumps({**fields, "pad": ""}).encode()
    return json.dumps({**fields, "pad": "x" * (size - len(empty))}).encode()


def test_body_size_and_content_type_limits(api: Api, accounts: Accounts) -> None:
    account = accounts.create("lm")
    push_body = {"message": "hello"}
    bulk_body = {"messages": []}
    # name: (path, body, extra call options, the statuses that are right)
    cases = {
        "push, just under 1 MB": (PUSH, _padded(MB - 100, **push_body), {}, {202}),
        "push, over 1 MB": (PUSH, _padded(MB + 1, **push_body), {}, {413}),
        # WSGI hands Django a chunked body as empty, so the project refuses chunked bodies.
        "push, over 1 MB, chunked": (PUSH, _padded(MB + 1, **push_body), {"chunked": True}, {411}),
        "track one, over 1 MB": (TRACK, _padded(MB + 1, user_message="hi"), {}, {413}),
        "bulk, just under 5 MB": (BULK, _padded(5 * MB - 100, **bulk_body), {}, {200}),
        "bulk, over 5 MB": (BULK, _padded(5 * MB + 1, **bulk_body), {}, {413}),
        "push, text/plain": (PUSH, b"hello", {"headers": {"Content-Type": "text/plain"}}, {415}),
        "bulk, text/plain": (BULK, b"[]", {"headers": {"Content-Type": "text/plain"}}, {415}),
        "push, form": (
            PUSH,
            b"message=hello",
            {"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            {415},
        ),
    }

    answers = {}
    for name, (path, body, options, _) in cases.items():
        reply = api.call("POST", path, body=body, token=account.access, **options)
        answers[name] = reply.status
    record("security: request limits", statuses=answers)

    wrong = {
        name: answers[name] for name, (*_, right) in cases.items() if answers[name] not in right
    }
    assert wrong == {}
