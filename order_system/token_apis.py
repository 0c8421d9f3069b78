"""POST /api/auth/token/ and /api/auth/token/refresh/: the service's own JWTs for its Django users (API_AUTH=jwt)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from order_system.errors import error_response

LOGIN_REFUSALS = {
    400: error_response("A field is missing or not a string."),
    401: error_response("Wrong username or password, or an inactive user."),
    429: error_response("Over JWT_LOGIN_RATE from this address, or locked out by failed logins (django-axes)."),
}


@extend_schema_view(
    post=extend_schema(operation_id="auth_token_obtain", responses={200: TokenObtainPairSerializer, **LOGIN_REFUSALS})
)
class TokenObtainApi(TokenObtainPairView):
    """POST /api/auth/token/: a Django user's username and password for an access and a refresh token.

    simplejwt checks the password with django.contrib.auth.authenticate(request=...), so django-axes counts failures
    and locks out, as for the admin; JWT_LOGIN_RATE throttles attempts per address before any password is hashed.
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "jwt_login"


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        responses={
            200: TokenRefreshSerializer,
            400: error_response("The refresh token is missing or not a string."),
            401: error_response("The refresh token is expired or not valid, or its user inactive."),
        },
    )
)
class TokenRefreshApi(TokenRefreshView):
    """POST /api/auth/token/refresh/: a new access token for a refresh token."""
