"""Slow clients against the real server: they hold sockets but no thread, and a shutdown still hands orders back."""

import contextlib
import http.client
import json
import os
import signal
import socket
from pathlib import Path

from tests.helpers import order_body, place_orders, wait_for

# Headers, then 10 of the 100 body bytes they announce.
PARTIAL_BODY = (
    b"POST /api/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    b'{"user_id"'
)


@contextlib.contextmanager
def slow_clients(server, count: int = 80, *, partial_bodies_only: bool = False):
    """count connections held open, half after one byte, half after a partial body; taken in by the server."""
    held = []
    try:
        for number in range(count):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            held.append(sock)
            sock.sendall(b"G" if number % 2 and not partial_bodies_only else PARTIAL_BODY)
        wait_for(lambda: not waiting_to_be_accepted(server.port), timeout=10)
        yield
    finally:
        for sock in held:
            sock.close()


def waiting_to_be_accepted(port: int) -> int:
    """Connections in the listen queues of this port that no server process has accepted yet."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    listening = [row for row in rows if int(row[1].split(":")[1], 16) == port and row[3] == "0A"]
    return sum(int(row[4].split(":")[1], 16) for row in listening)


def status_within_a_second(server, method: str, path: str, body: dict | None = None) -> int:
    """One request on a new connection that must be answered within 1 s (socket.timeout otherwise)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
    try:
        connection.request(method, path, body and json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_80_slow_clients_leave_the_server_answering(server):
    with slow_clients(server):
        for _ in range(5):
            assert status_within_a_second(server, "GET", "/healthz") == 200
            assert status_within_a_second(server, "POST", "/api/orders/", order_body()) == 201


def test_thousands_of_slow_bodies_leave_the_server_answering(server):
    """More than granian's default limit of requests in progress (backlog / processes: 1,024 a process)."""
    with slow_clients(server, count=3000, partial_bodies_only=True):
        assert status_within_a_second(server, "GET", "/healthz") == 200
        assert status_within_a_second(server, "POST", "/api/orders/", order_body()) == 201


def test_sigterm_during_the_attack_exits_and_hands_the_orders_in_flight_back(processes, database):
    server = processes(ORDER_PROCESSING_SECONDS="20", ORDER_MAX_ATTEMPTS="1")
    place_orders(server, 4)
    wait_for(lambda: database.statuses() == {"PROCESSING": 4}, timeout=30)

    with slow_clients(server):
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=20)  # the order worker's grace is 5 s, then it hands back what it holds

    assert database.statuses() == {"PENDING": 4}
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(0,)]


def test_a_huge_content_length_without_its_body_gets_a_413_at_once(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=1) as sock:
        sock.sendall(
            b"POST /api/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\n\r\n"
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())

    assert response.status == 413
    assert body["errors"][0]["code"] == "too_large"
