"""P1's yardstick: the push's work done by hand in a plain Django view.

JWT verification with PyJWT, Redis INCR, RPUSH of a JSON payload, and a 202 JSON answer:
no DRF, no serializers, no revocation check, no idempotency, no inbox arming.
"""

import json
import secrets
import uuid
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.redis import store


@csrf_exempt
def reference_push(request: HttpRequest) -> JsonResponse:
    """Do what the push endpoint does, minimally."""
    header = request.headers.get("Authorization", "")
    try:
        claims = jwt.decode(
            header.removeprefix("Bearer "),
            settings.SIMPLE_JWT["SIGNING_KEY"],
            algorithms=["HS256"],
        )
        message = json.loads(request.body)["message"]
    except (jwt.InvalidTokenError, ValueError, KeyError):
        return JsonResponse({"detail": "bad request"}, status=400)
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
    return JsonResponse(
        {"message_id": payload["message_id"], "user_id": user_id, "request_count": count},
        status=202,
    )
