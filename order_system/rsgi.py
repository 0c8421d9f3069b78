"""The application granian serves: a request reaches Django only once its whole body has arrived.

granian's own WSGI interface calls the application as soon as the headers are in, and a thread reading a body that
never comes waits for as long as the client keeps the connection open: forty such clients stop a server of 32 threads.
Here the body is read on granian's event loop, where a slow client costs no thread, within a time limit and a size
limit; then Django's WSGI handler answers on one of this process's WEB_THREADS threads.
"""

import asyncio
import io
import json
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from granian.rsgi import ProtocolClosed

# First: it sets Django up, and the API's authentication classes (loaded by importing DRF's views) need its apps.
from order_system.wsgi import application as django_application

# isort: split
from order_system.errors import error_body
from order_system.server import BODY_READ_SECONDS, STOPPING_BODY_READ_SECONDS, THREADS
from orders.queueing import get_backend

threads = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="request")
# The deadlines of the body reads under way: a stopping process cuts them short, since granian's worker exits only
# once every connection is done.
body_reads: set[asyncio.Timeout] = set()
stopping = threading.Event()


class BodyRefused(Exception):
    """The body is too large, too slow or cut short: answered here, without a thread, in the API's error shape."""

    def __init__(self, status: int, code: str, detail: str):
        self.status = status
        self.body = json.dumps(error_body(status, [{"attr": "body", "code": code, "detail": detail}]))


class Application:
    """The RSGI application: read the body on the event loop, then let Django answer on a thread."""

    async def __rsgi__(self, scope, protocol) -> None:
        try:
            body = await read_body(scope, protocol)
        except BodyRefused as refused:
            headers = [("content-type", "application/json"), ("connection", "close")]
            protocol.response_str(refused.status, headers, refused.body)
            return
        environ = wsgi_environ(scope, body)
        status, headers, content = await asyncio.get_running_loop().run_in_executor(threads, call_django, environ)
        protocol.response_bytes(status, headers, content)

    def __rsgi_init__(self, loop) -> None:
        """Once granian has set its own handlers: on SIGTERM or SIGINT, stop at once what would delay the exit.

        granian's event loop still hears of the signal (through the signal wakeup fd, whatever the Python handler), and
        stops taking connections; the process exits once the open ones are done.
        """
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop_on(signum, loop))


def stop_on(signum: int, loop):
    """A signal handler: cut the body reads short, hand the orders in flight back, then run the handler it replaces."""
    replaced = signal.getsignal(signum)

    def handler(*args) -> None:
        if not stopping.is_set():
            stopping.set()
            loop.call_soon_threadsafe(cut_body_reads, loop)
            # Off the event loop: the grace for orders in flight (ORDER_SHUTDOWN_GRACE_SECONDS) would stall requests.
            threading.Thread(target=get_backend().stop, name="order-worker-stop").start()
        if callable(replaced):
            replaced(*args)

    return handler


def cut_body_reads(loop) -> None:
    for deadline in body_reads:
        deadline.reschedule(min(deadline.when(), loop.time() + STOPPING_BODY_READ_SECONDS))


application = Application()


async def read_body(scope, protocol) -> bytes:
    """The whole body, up to DATA_UPLOAD_MAX_MEMORY_SIZE, within BODY_READ_SECONDS."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_large = BodyRefused(413, "too_large", f"The request body is larger than {limit // (1024 * 1024)} MB.")
    length = scope.headers.get("content-length", "")
    announced = int(length) if length.isdigit() else None
    if announced is not None and announced > limit:
        raise too_large  # before reading any of it
    if announced is None:
        # No body in HTTP/1.1 (RFC 9112, 6.3), or a chunked one, which Django refuses with a 411 unread
        # (order_system.middleware): reading it first would be work for nothing.
        return b""
    try:
        async with asyncio.timeout(STOPPING_BODY_READ_SECONDS if stopping.is_set() else BODY_READ_SECONDS) as deadline:
            body_reads.add(deadline)
            try:
                body = await protocol()  # hyper stops a body at its Content-Length
            finally:
                body_reads.discard(deadline)
    except ProtocolClosed:
        body = b""  # the client closed its side before the end of the body
    except TimeoutError:
        if stopping.is_set():
            raise BodyRefused(503, "unavailable", "The server is restarting: send the request again.") from None
        detail = f"The request body did not arrive within {BODY_READ_SECONDS:g} seconds."
        raise BodyRefused(408, "timeout", detail) from None
    if announced is not None and len(body) < announced:
        # What arrived, if anything, is part of a body, which could still be valid JSON.
        raise BodyRefused(400, "truncated", f"The body ended before the {announced} bytes it announced.")
    return body


def wsgi_environ(scope, body: bytes) -> dict:
    """PEP 3333's environ for a request whose body is already in memory."""
    server_name, _, server_port = scope.server.rpartition(":")
    environ = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode().decode("latin-1"),  # granian has percent-decoded it already
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_name.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in scope.headers.items():
        if "_" in name:
            continue  # X_Forwarded_Proto would pass for X-Forwarded-Proto once both become HTTP_X_FORWARDED_PROTO
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        if key in environ:
            value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        environ[key] = value
    return environ


def call_django(environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Django's answer to one request: status, headers and the whole body."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers

    result = django_application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()
    return answer["status"], answer["headers"], content
