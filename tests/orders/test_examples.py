"""The example processor, orders.examples.charge_payment, against a real HTTP payment service on 127.0.0.1."""

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orders.models import Order
from orders.services import order_create
from tests.helpers import wait_for


class PaymentService(BaseHTTPRequestHandler):
    """Answers as the order's user_id says: pays (200), declined (402), down (503, Retry-After: 1) or hangs."""

    def do_POST(self):
        charge = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.charges[charge["user_id"]].append((time.monotonic(), charge, self.headers["Idempotency-Key"]))
        match charge["user_id"]:
            case "pays":
                self.answer(200, {"transaction_id": f"tx_{charge['order_id'][:8]}"})
            case "declined":
                self.answer(402, {"error": "insufficient funds"})
            case "down":
                self.answer(503, {"error": "maintenance"}, {"Retry-After": "1"})
            case "hangs":
                self.server.released.wait(30)

    def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def payment_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PaymentService)
    server.daemon_threads = True
    server.charges, server.released = defaultdict(list), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


def test_charge_payment_completes_rejects_retries_and_times_out_as_the_service_answers(payment_service, start_worker):
    backend = start_worker(
        ORDER_PROCESSOR="orders.examples.charge_payment",
        PAYMENT_SERVICE_URL=f"http://127.0.0.1:{payment_service.server_port}/charges",
        ORDER_PROCESSING_TIMEOUT_SECONDS=1,
        ORDER_MAX_ATTEMPTS=2,
    )
    orders = {
        user_id: order_create(user_id=user_id, item_ids=[1], total_amount="7.50")[0].pk
        for user_id in ("pays", "declined", "down", "hangs")
    }
    wait_for(lambda: set(Order.objects.values_list("status", flat=True)) <= {"COMPLETED", "FAILED"}, timeout=30)
    backend.stop()

    outcome = {
        user_id: Order.objects.values_list("status", "attempts", "failure_reason", "result").get(pk=order_id)
        for user_id, order_id in orders.items()
    }
    assert outcome["pays"] == ("COMPLETED", 1, "", {"transaction_id": f"tx_{str(orders['pays'])[:8]}"})
    assert outcome["declined"] == ("FAILED", 1, 'payment declined: {"error": "insufficient funds"}', None)
    assert outcome["down"] == ("FAILED", 2, "payment service answered 503", None)
    assert outcome["hangs"] == ("FAILED", 2, "Timed out after 1 s (ORDER_PROCESSING_TIMEOUT_SECONDS).", None)
    [(_, charge, key)] = payment_service.charges["pays"]
    assert charge == {"order_id": str(orders["pays"]), "user_id": "pays", "amount": "7.50"}
    assert key == f"order-{orders['pays']}"
    # Retry-After: 1 replaced the 0.05 s backoff; every attempt sent the same key, so the service can't charge twice.
    (first, _, key_1), (second, _, key_2) = payment_service.charges["down"]
    assert second - first >= 0.9
    assert key_1 == key_2 == f"order-{orders['down']}"
