"""JWT access (API_AUTH=jwt): the service's own tokens for its Django users, or an OAuth2/OIDC provider's (docs/api.md).

simplejwt does the work. What it lacks is here: verifying a provider's tokens in whichever algorithm the key its JWKS
publishes under the token's kid has (RSA and EC keys at once), a user with no row of ours, and refusals with one
reason. The login views are in order_system/token_apis.py: DRF's views load this module as an authentication class.
"""

import hashlib
import re
from datetime import timedelta
from functools import cache

import jwt
from django.conf import settings
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

# Public-key algorithms only: a provider's keys are public, so a shared-secret one (HS256) would let anyone sign.
PROVIDER_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
# Every request thread waits for a fetch of the provider's keys (PyJWKClient holds a lock): at most this long.
JWKS_TIMEOUT_SECONDS = 5


class IdentityProviderUnavailable(APIException):
    """The provider's keys can't be fetched, so no token can be checked: the caller is not at fault."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The identity provider's keys (JWT_JWKS_URL) can't be fetched now; try again shortly."
    default_code = "identity_provider_unavailable"


class ProviderTokenBackend(TokenBackend):
    """Verifies a provider's token with the key its JWKS publishes under the token's kid, in that key's algorithm.

    simplejwt's own backend checks one algorithm. A refusal is raised as the API's 401 (or 503) with its reason, since
    simplejwt would replace any reason with "Token is invalid".
    """

    def __init__(self, *, jwks_url: str, issuer: str, audience: str):
        super().__init__("RS256", audience=audience, issuer=issuer)  # the algorithm is the key's own, in decode()
        # The key set is cached for 5 minutes; an unknown kid fetches it again at most every 30 s (PyJWKClient).
        self.jwks_client = jwt.PyJWKClient(jwks_url, timeout=JWKS_TIMEOUT_SECONDS)

    def decode(self, token, verify: bool = True) -> dict:
        try:
            key = self.jwks_client.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, ValueError) as exc:  # down, or nonsense keys
            raise IdentityProviderUnavailable() from exc
        except jwt.PyJWTError as exc:  # a malformed token, or a kid the provider doesn't publish
            raise refused(str(exc)) from exc
        if key.algorithm_name not in PROVIDER_ALGORITHMS:
            raise refused(f"The provider's key {key.key_id!r} is for {key.algorithm_name}, not a public-key algorithm.")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],  # the token's own "alg" is never trusted: "none", or HS256 keyed
                audience=self.audience,  # with the public key, is refused here
                issuer=self.issuer,
                leeway=self.get_leeway(),
            )
        except jwt.ExpiredSignatureError:
            raise refused("The token has expired.", code="token_expired") from None
        except jwt.PyJWTError as exc:  # bad signature, wrong issuer or audience, not valid yet
            raise refused(str(exc)) from exc


@cache
def provider_token_backend(jwks_url: str, issuer: str, audience: str) -> ProviderTokenBackend:
    """One backend per configuration and process, so its cached keys serve every request."""
    return ProviderTokenBackend(jwks_url=jwks_url, issuer=issuer, audience=audience)


class ProviderAccessToken(Token):
    """An access token from the provider (AUTH_TOKEN_CLASSES with JWT_JWKS_URL): verified, never made, here."""

    token_type = "access"
    lifetime = timedelta(0)  # simplejwt's Token requires one; the provider sets "exp"

    def get_token_backend(self) -> ProviderTokenBackend:
        return provider_token_backend(settings.JWT_JWKS_URL, settings.JWT_ISSUER, settings.JWT_AUDIENCE)

    def verify(self) -> None:
        self.check_exp()  # required, as for our own tokens; a provider's carry no token_type or jti claim of ours


# The rules of an order's user_id (orders.serializers), which a provider's user names its orders by.
USER_ID = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,128}")


class ProviderUser:
    """A provider's user, built from the token alone: JWT_USER_CLAIM names it, JWT_ADMIN_CLAIM may make it staff.

    simplejwt's TokenUser would take is_staff from an "is_staff" claim, which a provider never means that way.
    """

    is_authenticated = True
    is_active = True

    def __init__(self, token: Token):
        username = token.get(settings.JWT_USER_CLAIM)
        if not isinstance(username, str) or not USER_ID.fullmatch(username):
            raise refused(
                f"The token's {settings.JWT_USER_CLAIM!r} claim must be a string of 1 to 128 characters, "
                "without control characters: it names the user."
            )
        self.username = username
        self.is_staff = settings.JWT_ADMIN_SCOPE in scopes(token.get(settings.JWT_ADMIN_CLAIM))
        # Keys throttling and idempotency keys ("user:<pk>"): a fixed length, however long the provider's ids.
        self.pk = hashlib.sha256(username.encode()).hexdigest()[:32]

    def get_username(self) -> str:
        return self.username


def scopes(claim) -> list[str]:
    """An OAuth scope claim is a space-separated string; Entra ID's roles and Keycloak's are lists."""
    if isinstance(claim, str):
        return claim.split()
    return [scope for scope in claim if isinstance(scope, str)] if isinstance(claim, list) else []


class JWTAuthentication(SimpleJWTAuthentication):
    """simplejwt's JWT authentication, with one readable reason for a refusal; a provider's token needs no user row."""

    def get_validated_token(self, raw_token: bytes) -> Token:
        (token_class,) = api_settings.AUTH_TOKEN_CLASSES  # ours, or ProviderAccessToken (simplejwt tries each)
        try:
            return token_class(raw_token)
        except ExpiredTokenError:
            raise refused("The token has expired.", code="token_expired") from None
        except TokenError as exc:
            raise refused(str(exc)) from None

    def get_user(self, validated_token: Token):
        if isinstance(validated_token, ProviderAccessToken):
            return ProviderUser(validated_token)
        return super().get_user(validated_token)


def refused(reason: str, code: str = "token_not_valid") -> AuthenticationFailed:
    """A 401 for a token that can't be accepted, saying why."""
    return AuthenticationFailed(reason, code=code)


class JWTScheme(SimpleJWTScheme):
    """Documents the JWT bearer scheme in the OpenAPI schema, as drf-spectacular does simplejwt's own class."""

    target_class = JWTAuthentication

    def get_security_definition(self, auto_schema):
        return {
            **super().get_security_definition(auto_schema),
            "description": "A JWT: an access token from POST /api/auth/token/, or from your identity provider. A "
            "user's token sees only that user's orders.",
        }
