"""Throttles for the unauthenticated endpoints (rates from REST_FRAMEWORK's THROTTLE_RATES)."""

import hashlib
from collections.abc import Mapping

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView


class UserLoginThrottle(SimpleRateThrottle):
    """Limits login attempts per username and client address (scope `login`)."""

    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        """Key on the lowercased username plus the client address."""
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        # Hashed: the name is untrusted input of any length and any characters.
        digest = hashlib.sha256(str(username or "").lower().encode()).hexdigest()[:32]
        ident = f"{digest}:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class UserRegisterThrottle(AnonRateThrottle):
    """Limits registrations per client address (scope `register`)."""

    scope = "register"
