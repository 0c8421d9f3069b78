"""Request checks that must run before anything reads the body."""

from order_system.errors import length_required


class ChunkedBodyRefusalMiddleware:
    """A body without a Content-Length (chunked, or streamed over HTTP/2) is a 411: send it with one.

    Django reads a request body by its Content-Length alone, so under WSGI such a body looks empty, and DRF, seeing no
    length, never calls the parser. gunicorn and granian pass a chunked HTTP/1.1 body on with HTTP_TRANSFER_ENCODING
    set and no CONTENT_LENGTH; granian passes an HTTP/2 body sent without content-length with neither. Refusing it is
    simpler and safer than reading to the end of the stream ourselves.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if has_body_without_length(request.META):
            return length_required(request)
        return self.get_response(request)


def has_body_without_length(meta: dict) -> bool:
    """Whether the request carries a body that no Content-Length measures."""
    if "HTTP_TRANSFER_ENCODING" in meta:
        return True
    if meta.get("CONTENT_LENGTH") or meta.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
        return False  # in HTTP/1, no Content-Length and no Transfer-Encoding means no body (RFC 9112 6.3)
    # HTTP/2 and later frame a body themselves: the only way to know one came is to look. A request refused here is
    # never read further, so the byte taken does not matter.
    return meta["wsgi.input"].read(1) != b""
