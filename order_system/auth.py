"""Who may call the API once it is closed (API_TOKENS, API_AUTH; docs/operations.md): service tokens and operators."""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission


@dataclass(frozen=True)
class ApiClient:
    """Whoever holds a valid service token; its pk, a hash of the token, keys throttling per client, not address."""

    pk: str
    is_authenticated: bool = True


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`, compared in constant time with every token in API_TOKENS."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send exactly one token: 'Authorization: Bearer <token>'.")
        token = parts[1]
        if not any(hmac.compare_digest(token, known.encode()) for known in settings.API_TOKENS):
            if "jwt" in settings.API_AUTH:
                return None  # a JWT, perhaps: the JWT authentication, next, decides
            raise AuthenticationFailed("This token is not valid.")
        return ApiClient(pk=hashlib.sha256(token).hexdigest()[:16]), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'  # makes a missing or bad token a 401, not a 403


def is_operator(user) -> bool:
    """Sees every order and the metrics: a service token, a staff user, or a provider's token with the admin scope."""
    return isinstance(user, ApiClient) or bool(user and user.is_authenticated and user.is_staff)


class HasApiToken(BasePermission):
    """The API once closed: a valid service token or JWT, or a staff member signed in to the admin (the dashboard)."""

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user) or request.auth is not None  # a session carries no token


class IsOperator(BasePermission):
    """The metrics: anyone's while the API is open; once closed, an operator's only, not a user's."""

    def has_permission(self, request, view) -> bool:
        return settings.API_OPEN or is_operator(request.user)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the service token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A service token (API_TOKENS): sees every order."}
