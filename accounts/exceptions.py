"""Domain errors of the accounts service and the messages they carry (tests assert on these)."""

# ruff S105 takes any constant named *PASSWORD* or *TOKEN* for a secret; these are messages.
# ruff: noqa: S105

from rest_framework import exceptions, status

USERNAME_INVALID = "Username must be 5 to 15 characters, ASCII letters and digits only."
PASSWORD_INVALID = "Password must be 6 to 12 characters."
ROLE_INVALID = "Role must be 'user' or 'admin'."
USERNAME_TAKEN = "A user with that username already exists."
INVALID_CREDENTIALS = "Invalid username or password."
TOKEN_MALFORMED = "Token is malformed."
TOKEN_BAD_SIGNATURE = "Token signature is invalid."
TOKEN_EXPIRED = "Token has expired."
TOKEN_REVOKED = "Token has been revoked."
TOKEN_OUTDATED = "Token was issued before this server's upgrade; log in again."
TOKEN_NOT_ACCESS = "Token is not an access token."
TOKEN_NOT_REFRESH = "Token is not a refresh token."
TOKEN_USER_GONE = "The user of this token no longer exists."
TOKEN_NOT_YOURS = "This refresh token belongs to another user."
API_KEY_INVALID = "API key is invalid, revoked or expired."
API_KEY_NOT_HERE = "API keys cannot be used here: log in and use an access token."
API_KEY_SCOPE_MISSING = "This API key lacks the {scope} scope."
API_KEY_NOT_FOUND = "No API key with this id."
SCOPE_UNKNOWN = "Every scope must be one of: {scopes}."
PASSWORD_WRONG = "The password is wrong."
ADMIN_ONLY = "Only an admin may erase another user."
USER_NOT_FOUND = "No user with this id."
ERASURE_NOT_FOUND = "No erasure with this id."


class UsernameTaken(exceptions.APIException):
    """The username is already registered, in any letter case."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = USERNAME_TAKEN
    default_code = "username_taken"


class InvalidCredentials(exceptions.AuthenticationFailed):
    """Login failed; deliberately silent on whether the user exists."""

    default_detail = INVALID_CREDENTIALS
    default_code = "invalid_credentials"


class TokenMalformed(exceptions.AuthenticationFailed):
    """The bearer value is not a well-formed JWT with the claims we issue."""

    default_detail = TOKEN_MALFORMED
    default_code = "token_malformed"


class TokenBadSignature(exceptions.AuthenticationFailed):
    """The token was not signed with our key and algorithm (tampered, alg=none, other key)."""

    default_detail = TOKEN_BAD_SIGNATURE
    default_code = "token_bad_signature"


class TokenExpired(exceptions.AuthenticationFailed):
    """The token's `exp` has passed."""

    default_detail = TOKEN_EXPIRED
    default_code = "token_expired"


class TokenRevoked(exceptions.AuthenticationFailed):
    """The token's `jti` was revoked by logout or by a refresh rotation."""

    default_detail = TOKEN_REVOKED
    default_code = "token_revoked"


class TokenOutdated(exceptions.AuthenticationFailed):
    """The token predates the user-tagged revocation keys, so its revocation cannot be read."""

    default_detail = TOKEN_OUTDATED
    default_code = "token_outdated"


class TokenNotAccess(exceptions.AuthenticationFailed):
    """A token of another type (e.g. a refresh token) was sent as the bearer access token."""

    default_detail = TOKEN_NOT_ACCESS
    default_code = "token_not_access"


class TokenNotRefresh(exceptions.AuthenticationFailed):
    """A token of another type (e.g. an access token) was sent where a refresh token belongs."""

    default_detail = TOKEN_NOT_REFRESH
    default_code = "token_not_refresh"


class TokenUserGone(exceptions.AuthenticationFailed):
    """The token is valid but its user has since been deleted."""

    default_detail = TOKEN_USER_GONE
    default_code = "token_user_gone"


class TokenNotYours(exceptions.PermissionDenied):
    """A refresh token of another user was sent to logout."""

    default_detail = TOKEN_NOT_YOURS
    default_code = "token_not_yours"


class ApiKeyInvalid(exceptions.AuthenticationFailed):
    """An API key that does not exist, does not match, or has expired."""

    default_detail = API_KEY_INVALID
    default_code = "api_key_invalid"


class PasswordWrong(exceptions.PermissionDenied):
    """The password given to confirm an action is not the user's."""

    default_detail = PASSWORD_WRONG
    default_code = "password_wrong"
