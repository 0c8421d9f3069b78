"""One error shape for the whole API: {"type": ..., "errors": [{"attr", "code", "detail"}]}."""

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.urls import resolve
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.common import no_append_slash
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


class PayloadTooLarge(exceptions.APIException):
    """The request body is over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than 1 MB."
    default_code = "too_large"


class UnsupportedContentEncoding(exceptions.APIException):
    """The body is compressed or otherwise encoded; only identity (no Content-Encoding) is read."""

    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Send the body without a Content-Encoding (or with identity): compressed bodies are not accepted."
    default_code = "unsupported_encoding"
    headers = {"Accept-Encoding": "identity"}  # RFC 9110 15.5.16: say which codings would have been accepted


class Conflict(exceptions.APIException):
    """The request clashes with the current state; extra facts (such as the current status) join the body."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"

    def __init__(self, detail=None, code=None, *, extra: dict | None = None):
        super().__init__(detail, code)
        self.extra = extra or {}


class UnprocessableEntity(exceptions.APIException):
    """The request is well formed but cannot be applied."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be applied."
    default_code = "unprocessable"


# The field an error is about, when an exception's detail is a bare message rather than {field: [...]}.
ATTR_BY_EXCEPTION = {
    exceptions.ParseError: "body",
    PayloadTooLarge: "body",
    UnsupportedContentEncoding: "Content-Encoding",
    exceptions.UnsupportedMediaType: "Content-Type",
    exceptions.NotAcceptable: "Accept",
    exceptions.MethodNotAllowed: "method",
    exceptions.NotAuthenticated: "Authorization",
    exceptions.AuthenticationFailed: "Authorization",
    exceptions.PermissionDenied: "Authorization",
    exceptions.Throttled: "request",
    exceptions.NotFound: "path",
}


class ErrorSerializer(serializers.Serializer):
    """One error: the field, header or part of the request at fault, a stable code and a readable message."""

    attr = serializers.CharField()
    code = serializers.CharField()
    detail = serializers.CharField()


class ErrorResponseSerializer(serializers.Serializer):
    """The body of every 4xx and 5xx."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error", "server_error"])
    errors = ErrorSerializer(many=True)


def error_response(description: str) -> OpenApiResponse:
    """An error response for the OpenAPI schema."""
    return OpenApiResponse(response=ErrorResponseSerializer, description=description)


# With the API closed (API_TOKENS, API_AUTH): no valid token, or one that may not do this. A user's token sees only
# that user's orders: another user's order is a 404, as an unknown one.
REFUSED = {
    401: error_response("No token, or one that is not valid (with API_TOKENS or API_AUTH set)."),
    403: error_response("A token that may not do this."),
}

# Every operation that can receive a body answers these the same way (order_system/parsers.py, middleware.py).
LENGTH_REQUIRED = "A body without a Content-Length (chunked, or streamed over HTTP/2): send one with it."
UNSUPPORTED_BODY = "Content-Type other than application/json (charset=utf-8 optional), or a Content-Encoding."


def refuse_body(request) -> None:
    """An operation without a body: one sent anyway gets the create's checks first, then a 400, never silence."""
    # Reading request.data first runs the Content-Type, Content-Encoding, truncation and size checks of every body.
    if request.data or int(request.META.get("CONTENT_LENGTH") or 0):
        raise exceptions.ParseError("This operation takes no body.", code="unexpected_body")


def exception_handler(exc, context):
    """DRF's handler, reshaped so every error names its field in the same envelope."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    # DRF answers Django's own Http404 and PermissionDenied too; give them DRF's shape before reading .detail.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    default_attr = next((attr for cls, attr in ATTR_BY_EXCEPTION.items() if isinstance(exc, cls)), "request")
    response.data = {
        **error_body(response.status_code, list(flatten(exc.detail, default_attr))),
        **getattr(exc, "extra", {}),
    }
    for name, value in getattr(exc, "headers", {}).items():
        response[name] = value
    return response


def flatten(detail, default_attr: str, path: str = ""):
    """Yield one {"attr", "code", "detail"} per message in DRF's nested error detail; paths join with dots."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            child = path if key == api_settings.NON_FIELD_ERRORS_KEY else f"{path}.{key}" if path else str(key)
            yield from flatten(value, default_attr, child)
    elif isinstance(detail, list):
        for item in detail:
            yield from flatten(item, default_attr, path)
    else:
        yield {"attr": path or default_attr, "code": getattr(detail, "code", "invalid"), "detail": str(detail)}


def error_body(status_code: int, errors: list[dict]) -> dict:
    """The envelope shared by every error response."""
    kind = "validation_error" if status_code == 400 else "client_error" if status_code < 500 else "server_error"
    return {"type": kind, "errors": errors}


def json_error_view(status_code: int, attr: str, code: str, detail: str):
    """A Django error handler (handler400/403/404/500) answering in the API's error shape."""

    @csrf_exempt  # a POST to a mistyped URL should get this 404, not a CSRF page
    def view(request, *args, exception=None, **kwargs):
        body = error_body(status_code, [{"attr": attr, "code": code, "detail": detail}])
        return JsonResponse(body, status=status_code)

    return view


def get_only(view):
    """For pages outside the API's views: any method but GET or HEAD gets the API's JSON 405, with no CSRF check."""

    @csrf_exempt
    def guarded(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request)
        return view(request, *args, **kwargs)

    return guarded


@csrf_exempt
@no_append_slash  # the last route: never a target for a redirect with a slash added
def no_route(request, *args, **kwargs):
    """Any path no other route takes; a GET that only lacks its trailing slash (/admin) is redirected.

    This answers in place of APPEND_SLASH, which, with DEBUG on, fails a POST to /admin with a 500 and renders any
    unknown path as a debug page.
    """
    if request.method in ("GET", "HEAD") and not request.path_info.endswith("/"):
        target = resolve(f"{request.path_info}/")
        if getattr(target.func, "should_append_slash", True):
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return page_not_found(request)


class CredentialsFilter(SafeExceptionReporterFilter):
    """Debug pages and error reports: besides Django's secret-looking names, any password inside a URL is hidden.

    CELERY_BROKER_URL, CACHES, PAYMENT_SERVICE_URL and the environment (which runserver copies into request.META)
    carry credentials as scheme://user:password@host.
    """

    url_credentials = re.compile(r"(?<=://)[^/@\s]*@")

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        return self.cleanse_text(value) if isinstance(value, str) else value

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self.cleanse_text(value) if isinstance(value, str) else value) for name, value in variables]

    def cleanse_text(self, text: str) -> str:
        return self.url_credentials.sub(f"{self.cleansed_substitute}@", str(text))  # str(): settings may be lazy


bad_request = json_error_view(400, "request", "bad_request", "The request could not be understood.")
permission_denied = json_error_view(403, "request", "permission_denied", "You may not do this.")
length_required = json_error_view(
    411,
    "Content-Length",
    "length_required",
    "Send the body with a Content-Length: a chunked body, or one streamed without a length, is not accepted.",
)
page_not_found = json_error_view(404, "path", "not_found", "Nothing is at this path (API paths end with a slash).")
method_not_allowed = json_error_view(405, "method", "method_not_allowed", "This page only answers GET.")
csrf_failure = json_error_view(
    403, "CSRF", "csrf_failed", "The CSRF cookie or token is missing or wrong: reload the form and send it again."
)
server_error = json_error_view(500, "request", "server_error", "Something went wrong on our side.")
