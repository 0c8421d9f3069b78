"""Production mode: check --deploy, readiness, the queue backends, bearer tokens, throttling, and how the server
spreads connections over its processes."""

import http.client
import subprocess
import sys

import pytest
from django.contrib.auth.models import User

from order_system.auth import HasApiToken
from orders.models import Order
from tests.helpers import (
    PRODUCTION_ENV,
    ROOT,
    children,
    order_body,
    place_order,
    post_order,
    request,
    socket_inodes,
    tcp_sockets,
    wait_for,
)


def test_check_deploy_is_clean_in_the_documented_production_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": "", **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("autostart", [None, True])
def test_readyz_needs_the_worker_in_thread_mode(client, settings, autostart):
    settings.ORDER_WORKER_AUTOSTART = autostart

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "problems": {"queue": "the order worker of this process is not running"},
    }


def test_readyz_is_ready_with_the_database_and_a_running_worker(order_worker, client, settings):
    assert order_worker.stats()["concurrency"] == settings.ORDER_CONCURRENCY
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


@pytest.mark.django_db
def test_readyz_leaves_the_workers_to_process_orders_when_autostart_is_off(client, settings):
    settings.ORDER_WORKER_AUTOSTART = False

    assert client.get("/readyz").status_code == 200


def test_immediate_backend_has_the_order_final_when_the_201_is_sent(api, settings, transactional_db):
    settings.ORDER_QUEUE_BACKEND = "immediate"

    response = post_order(api)

    assert response.status_code == 201
    assert Order.objects.get(pk=response.json()["order_id"]).status == Order.Status.COMPLETED


def test_immediate_backend_retries_inline_with_the_same_rules(api, settings, transactional_db):
    settings.ORDER_QUEUE_BACKEND = "immediate"
    settings.ORDER_FAILURE_RATE = 1.0
    settings.ORDER_MAX_ATTEMPTS = 3
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0.01

    response = post_order(api)

    order = Order.objects.get(pk=response.json()["order_id"])
    assert (order.status, order.attempts, order.times_failed) == (Order.Status.FAILED, 3, 1)
    assert order.failure_reason == "SimulatedFailure: payment declined (simulated)"


def test_api_tokens_require_a_bearer_token_on_every_api_call(processes):
    server = processes(API_TOKENS="first-token,second-token")

    def call(method, path, token=None, body=None):
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        return request(server.url, method, path, body, headers=headers)

    status, body = call("POST", "/api/orders/", body=order_body())
    assert (status, body["errors"][0]["code"]) == (401, "not_authenticated")
    assert call("POST", "/api/orders/", "wrong-token", order_body())[0] == 401
    assert call("GET", "/api/metrics/")[0] == 401
    status, created = call("POST", "/api/orders/", "second-token", order_body())
    assert status == 201
    assert call("GET", f"/api/orders/{created['order_id']}/status/", "first-token")[0] == 200
    assert server.database.query("SELECT COUNT(*) FROM orders_order") == [(1,)]
    assert request(server.url, "GET", "/healthz")[0] == 200  # probes need no token


def test_order_create_rate_throttles_creating_but_not_reading(processes):
    server = processes(ORDER_CREATE_RATE="3/min", WEB_CONCURRENCY="1")

    statuses = [place_order(server.url)[0] for _ in range(4)]
    status, body = place_order(server.url)

    assert statuses == [201, 201, 201, 429]
    assert (status, body["type"], body["errors"][0]["code"]) == (429, "client_error", "throttled")
    assert request(server.url, "GET", "/api/orders/")[0] == 200
    assert server.database.query("SELECT COUNT(*) FROM orders_order") == [(3,)]


@pytest.mark.django_db
def test_with_api_tokens_a_signed_in_staff_member_may_read_the_api_and_a_customer_may_not(rf):
    staff, customer = User.objects.create_user("ops", is_staff=True), User.objects.create_user("customer")

    def allowed(user) -> bool:
        request = rf.get("/api/metrics/")
        request.user, request.auth = user, None  # signed in to the admin: a session, no token
        return HasApiToken().has_permission(request, view=None)

    assert (allowed(staff), allowed(customer), allowed(None)) == (True, False, False)


def test_the_server_spreads_keep_alive_connections_over_its_worker_processes(processes):
    # Every process takes its share: on one shared socket, a process that woke first could take a whole burst alone.
    server = processes()
    workers = wait_for(lambda: children(server.process.pid), until=lambda pids: len(pids) == 2)

    def connections_held_by_each_worker() -> list[int]:
        clients = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(40)]
        try:
            for client in clients:
                client.request("GET", "/healthz")
                assert client.getresponse().read() == b'{"status": "ok"}'
            established = tcp_sockets(server.port, "01")
            return [len(established & socket_inodes(pid)) for pid in workers]
        finally:
            for client in clients:
                client.close()

    # A worker process still starting takes no connection yet: ask again until both serve.
    held = wait_for(connections_held_by_each_worker, until=lambda held: min(held) > 0, timeout=30, interval=0.5)
    assert sum(held) == 40
