"""P1's yardstick: the push's work done by hand in a minimal DRF view.

JWT verification with PyJWT, Redis INCR, RPUSH of a JSON payload, and a 202 JSON answer:
no authentication class, no serializers, no revocation check, no idempotency, no inbox.
SPEC's anchor for such a view on this kind of machine is about 1,360 requests/s.
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

from core.redis import store


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
        redis = store()
        user_id = claims["user_id"]
        count = redis.incr(f"bench:count:{user_id}")
        payload = {
            "message_id": str(uuid.uuid4()),
            "user_id": user_id,
            "user_message": message,
            "request_count": count,
            "random_number": 1 + secrets.randbelow(60),
            "created_time": datetime.now(UTC).isoformat(),
        }
        redis.rpush("bench:reference:queue", json.dumps(payload))
        body = {"message_id": payload["message_id"], "user_id": user_id, "request_count": count}
        return Response(body, status=202)
