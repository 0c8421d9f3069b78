"""Middleware of our own, and the client address that login throttling counts by."""

import logging

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from django.http.multipartparser import MultiPartParserError
from rest_framework.throttling import BaseThrottle

from order_system.errors import bad_request, error_body, length_required, page_not_found
from order_system.threads import requests_in_flight

logger = logging.getLogger("django.security")


class CountRequests:
    """The outermost middleware: counts the requests being answered, so background work that can wait (sending
    webhooks) leaves the CPU and the database to them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with requests_in_flight:
            return self.get_response(request)


class RejectBadRequests:
    """The first middleware: a request Django would refuse deeper down gets the API's JSON 4xx here, DEBUG on or off.

    With DEBUG on, Django answers a bad Host, too many fields or a view's SuspiciousOperation with its debug page
    (tracebacks and settings), and rendering that page for 1,001 query parameters fails again into a 500. A body
    without a Content-Length would be read as empty by everything after this, so it is refused before anything reads.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.refusal(request) or self.get_response(request)

    def refusal(self, request) -> JsonResponse | None:
        """The answer to a request whose Host, query string or form body Django will not accept; None if it will."""
        try:
            request.get_host()
        except DisallowedHost as exc:
            return refuse(exc, 400, "Host", "disallowed_host", "This server does not answer to this Host.")
        if has_body_without_length(request.META):
            return length_required(request)
        try:
            request.GET  # noqa: B018 - Django parses the query string on first use
        except TooManyFieldsSent as exc:
            detail = f"The query string has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} parameters."
            return refuse(exc, 400, "query", "too_many_fields", detail)
        if request.path_info.startswith("/api/"):
            return None  # the API reads its own bodies: JSON only, anything else a 415
        try:
            request.POST  # noqa: B018 - a form body (the admin's) is parsed now
        except RequestDataTooBig as exc:
            return refuse(exc, 413, "body", "too_large", "The request body is larger than 1 MB.")
        except (TooManyFieldsSent, TooManyFilesSent, MultiPartParserError) as exc:
            return refuse(exc, 400, "body", "invalid", "The form body has too many fields or files, or is malformed.")
        return None

    def process_exception(self, request, exception):
        """A view's Http404 or bad request: the JSON answer Django gives with DEBUG off, not its debug page."""
        if isinstance(exception, Http404):
            return page_not_found(request)
        if isinstance(exception, SuspiciousOperation | BadRequest):
            logger.warning("Bad request to %s: %s", request.path, exception)
            return bad_request(request)
        return None


def refuse(exc: Exception, status_code: int, attr: str, code: str, detail: str) -> JsonResponse:
    """One error in the API's shape, with Django's reason in the log."""
    logger.warning("Refused a request: %s", exc)
    return JsonResponse(error_body(status_code, [{"attr": attr, "code": code, "detail": detail}]), status=status_code)


def has_body_without_length(meta: dict) -> bool:
    """Whether the request carries a body that no Content-Length measures: chunked, or streamed over HTTP/2.

    Django reads a request body by its Content-Length alone, so under WSGI such a body looks empty, and DRF, seeing no
    length, never calls the parser. Refusing it with a 411 is simpler and safer than reading to the end of the stream.
    """
    if "HTTP_TRANSFER_ENCODING" in meta:
        return True
    if meta.get("CONTENT_LENGTH") or meta.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
        return False  # in HTTP/1, no Content-Length and no Transfer-Encoding means no body (RFC 9112 6.3)
    # HTTP/2 and later frame a body themselves: the only way to know one came is to look. A request refused here is
    # never read further, so the byte taken does not matter.
    return meta["wsgi.input"].read(1) != b""


def client_address(request) -> str:
    """The client's address as the API's throttles see it: behind the proxy, the one it adds to X-Forwarded-For."""
    return BaseThrottle().get_ident(request)
