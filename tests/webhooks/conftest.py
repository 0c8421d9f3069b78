"""Webhook fixtures: real receivers (HTTP servers on 127.0.0.1, in threads) that verify every delivery, and the real
sender, fast."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from webhooks.sender import DeliverySender


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    """Receivers run on 127.0.0.1 over plain http; retries come fast."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0.05
    settings.WEBHOOK_SWEEP_SECONDS = 0.05
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.WEBHOOK_LEASE_SECONDS = 5.0


@dataclass(frozen=True)
class Received:
    """One request a receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    answered: int
    at: float  # time.monotonic()

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 answering webhooks as answer(number of this webhook-id's attempt, request) says:
    a status code, or (status code, seconds to wait first). Each request is verified with the secret, and kept."""

    def __init__(self, answer: Callable[[int, dict], int | tuple[int, float]] = lambda attempt, event: 200, port=0):
        self.answer = answer
        self.secrets: list[str] = []  # verified against any of them
        self.requests: list[Received] = []
        self.unverified: list[str] = []  # why each request that failed verification failed
        self._lock = threading.Lock()
        self._attempts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.verify(body, headers)
                with receiver._lock:
                    attempt = receiver._attempts[headers["webhook-id"]] = (
                        receiver._attempts.get(headers["webhook-id"], 0) + 1
                    )
                answer = receiver.answer(attempt, json.loads(body))
                status, delay = answer if isinstance(answer, tuple) else (answer, 0.0)
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    return  # the sender gave up waiting
                with receiver._lock:
                    receiver.requests.append(Received(headers, body, status, time.monotonic()))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verify(self, body: bytes, headers: dict) -> None:
        errors = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return
            except Exception as exc:
                errors.append(repr(exc))
        with self._lock:
            self.unverified.append("; ".join(errors) or "no secret")

    def succeeded(self) -> list[Received]:
        """The requests answered 2xx, in the order they were answered."""
        with self._lock:
            return [received for received in self.requests if 200 <= received.answered < 300]


@pytest.fixture
def receivers():
    """Start receivers; each is shut down when the test ends."""
    started: list[Receiver] = []

    def start(answer=lambda attempt, event: 200, port: int = 0) -> Receiver:
        receiver = Receiver(answer, port).start()
        started.append(receiver)
        return receiver

    try:
        yield start
    finally:
        for receiver in started:
            receiver.stop()


@pytest.fixture
def receiver(receivers) -> Receiver:
    """One receiver answering 200 to everything."""
    return receivers()


@pytest.fixture
def sender(transactional_db, settings):
    """This process's real sender, without the order worker; stopped when the test ends."""
    started: list[DeliverySender] = []

    def start(*, concurrency: int = 20) -> DeliverySender:
        sender = DeliverySender(
            concurrency=concurrency,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            sweep_seconds=settings.WEBHOOK_SWEEP_SECONDS,
        )
        sender.start()
        started.append(sender)
        return sender

    try:
        yield start
    finally:
        for sender in started:
            sender.stop(timeout=0)
