"""Optional bearer-token access to the API: off unless API_TOKENS lists tokens (docs/operations.md)."""

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
    """Whoever holds a valid token; its pk, a hash of the token, keys throttling per client instead of per address."""

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
            raise AuthenticationFailed("This token is not valid.")
        return ApiClient(pk=hashlib.sha256(token).hexdigest()[:16]), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'  # makes a missing or bad token a 401, not a 403


class HasApiToken(BasePermission):
    """With API_TOKENS set, a valid token, or a staff member signed in to the admin (the dashboard reads the API)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return isinstance(user, ApiClient) or bool(user and user.is_authenticated and user.is_staff)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
