"""Permissions of the accounts service: what an API key may do, by scope."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authentication import ApiKeyGrant
from accounts.exceptions import API_KEY_NOT_HERE, API_KEY_SCOPE_MISSING


class KeyScopeRequired(BasePermission):
    """Lets an API key through only where the view grants its method a scope the key holds.

    A view lists `key_scopes = {"GET": "read"}`; a method it does not list is for people
    (access tokens) only. Requests made with an access token are not concerned.
    """

    message = API_KEY_NOT_HERE

    def has_permission(self, request: Request, view: Any) -> bool:
        """True for tokens; for keys, the scope this method needs must be among the key's."""
        grant = request.auth
        if not isinstance(grant, ApiKeyGrant):
            return True
        needed = getattr(view, "key_scopes", {}).get(request.method)
        if needed is None:
            self.message = API_KEY_NOT_HERE
            return False
        if needed not in grant.scopes:
            self.message = API_KEY_SCOPE_MISSING.format(scope=needed)
            return False
        return True
