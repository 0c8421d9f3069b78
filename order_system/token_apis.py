"""POST /api/auth/token/ and /api/auth/token/refresh/: the service's own JWTs for its Django users (API_AUTH=jwt)."""

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from order_system.errors import error_response


# The bodies as the server takes them, which simplejwt's own description leaves out: DRF refuses a NUL and, once it
# trims surrounding whitespace, an empty string. A username has Django's default rules; a token is a JWS. For the
# schema only: simplejwt's serializers validate.
class LoginInputSerializer(serializers.Serializer):
    """A user's username and password."""

    username = serializers.CharField(validators=[RegexValidator(r"^[\w.@+-]{1,150}\Z")])
    password = serializers.CharField(
        style={"input_type": "password"}, validators=[RegexValidator(r"^[^\x00\s](?:[^\x00]*[^\x00\s])?\Z")]
    )


class RefreshInputSerializer(serializers.Serializer):
    """A refresh token from POST /api/auth/token/."""

    refresh = serializers.CharField(validators=[RegexValidator(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\Z")])


class TokenObtainApi(TokenObtainPairView):
    """Exchange a user's username and password for an access token and a refresh token."""

    # JWT_LOGIN_RATE per address, before any password is hashed.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "jwt_login"

    @extend_schema(
        operation_id="auth_token_obtain",
        request=LoginInputSerializer,
        responses={
            200: TokenObtainPairSerializer,
            400: error_response("A field is missing or not a string."),
            401: error_response("Wrong username or password, or an inactive user."),
            429: error_response("Over JWT_LOGIN_RATE from this address, or locked out after failed logins."),
        },
    )
    def post(self, request, *args, **kwargs):
        # simplejwt checks the password with authenticate(request=request), so django-axes counts each failure and
        # refuses a locked-out username or address, as for the admin. It marks the DRF request it was given, which
        # its middleware never sees: the lockout is answered here, in the API's error shape.
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            if getattr(request, "axes_locked_out", False):
                raise Throttled(
                    wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                    detail="Too many failed logins for this username or from this address.",
                    code="locked_out",
                ) from None
            raise


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_token_refresh",
        request=RefreshInputSerializer,
        responses={
            200: TokenRefreshSerializer,
            400: error_response("The refresh token is missing or not a string."),
            401: error_response("The refresh token is expired or not valid, or its user inactive."),
        },
    )
)
class TokenRefreshApi(TokenRefreshView):
    """Exchange a refresh token for a new access token."""
