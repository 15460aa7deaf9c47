"""P1's yardstick: the push's work done by hand in a minimal DRF view.

JWT verification with PyJWT, then one Redis round trip: a script that checks the token's
revocation key, INCRs and RPUSHes (core/lua/bench_reference_push.lua); then a 202 JSON answer.
No authentication class, no serializers, no idempotency, no rate limit, no inbox.
"""

import json
import secrets
import uuid
from datetime import UTC, datetime

import jwt
from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.redis import StoreScript

_REFERENCE_PUSH = StoreScript("bench_reference_push")


def reference_keys(user_id: str, jti: str) -> list[str]:
    """The revocation key, counter and queue of the reference, under one hash tag."""
    tag = f"{{bench:{user_id}}}"
    return [f"bench:revoked:{tag}:{jti}", f"bench:count:{tag}", f"bench:reference:{tag}"]


class ReferencePushApi(APIView):
    """Does what the push endpoint does, minimally."""

    authentication_classes = ()
    permission_classes = ()

    def post(self, request: Request) -> Response:
        """Check the token by hand, count, queue, answer 202."""
        header = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(
                header.removeprefix("Bearer "),
                settings.SIMPLE_JWT["SIGNING_KEY"],
                algorithms=["HS256"],
            )
            message = request.data["message"]
        except (jwt.InvalidTokenError, KeyError, TypeError):
            return Response({"detail": "bad request"}, status=400)
        user_id = claims["user_id"]
        payload = {
            "message_id": str(uuid.uuid4()),
            "user_id": user_id,
            "user_message": message,
            "random_number": 1 + secrets.randbelow(60),
            "created_time": datetime.now(UTC).isoformat(),
        }
        state, *count = _REFERENCE_PUSH(
            keys=reference_keys(user_id, claims["jti"]), args=[json.dumps(payload)]
        )
        if state == "revoked":
            return Response({"detail": "revoked"}, status=401)
        body = {"message_id": payload["message_id"], "user_id": user_id, "request_count": count[0]}
        return Response(body, status=202)
