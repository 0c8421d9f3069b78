"""Request checks that must run before anything reads the body."""

from order_system.errors import length_required


class ChunkedBodyRefusalMiddleware:
    """A body sent with Transfer-Encoding (chunked) is a 411: it must come with a Content-Length.

    Django reads a request body by its Content-Length alone, so under WSGI a chunked body looks empty, and DRF, seeing
    no length, never calls the parser. Both gunicorn and granian pass the body on with HTTP_TRANSFER_ENCODING set and
    no CONTENT_LENGTH. Refusing it outright is simpler and safer than reading to the end of the stream ourselves.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_TRANSFER_ENCODING" in request.META:
            return length_required(request)
        return self.get_response(request)
