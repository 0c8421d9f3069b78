"""Tokens the service signs for its Django users (API_AUTH=jwt, no JWT_JWKS_URL): a login, a refresh, each user
seeing only its own orders, staff seeing all, and logins throttled and locked out like the admin's."""

import time
import uuid

import jwt
import pytest

from tests.auth.conftest import create_users, module_server
from tests.helpers import ORDERS_URL, order_body, request
from tests.jwks import bearer, forged

SECRET_KEY = "jwt-tests-only-" + "k" * 40
USERS = [("alice", "alice-pw-7f3a9c", False), ("bob", "bob-pw-2d8e41", False), ("ops", "ops-pw-9b5c07", True)]
PASSWORDS = {name: password for name, password, _ in USERS}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server signing its own tokens, with three users; stopped by its PID at the end."""
    server = module_server(
        tmp_path_factory,
        "issuing",
        API_AUTH="jwt",
        DJANGO_SECRET_KEY=SECRET_KEY,
        JWT_LOGIN_RATE="1000/min",
        ORDER_WORKER_AUTOSTART="0",
    )
    create_users(server, *USERS)
    yield server
    server.stop()


def login(server, username: str, password: str | None = None) -> tuple[int, dict]:
    credentials = {"username": username, "password": password or PASSWORDS[username]}
    return request(server.url, "POST", "/api/auth/token/", credentials)


def access_token(server, username: str) -> str:
    status, tokens = login(server, username)
    assert status == 200, tokens
    return tokens["access"]


def test_a_login_gives_an_access_token_for_the_users_own_orders_and_a_refresh_token(server):
    status, tokens = login(server, "alice")
    assert (status, set(tokens)) == (200, {"access", "refresh"})

    placed, order = request(
        server.url, "POST", ORDERS_URL, {"item_ids": [1], "total_amount": "1"}, bearer(tokens["access"])
    )
    refreshed, new = request(server.url, "POST", "/api/auth/token/refresh/", {"refresh": tokens["refresh"]})

    assert (placed, order["user_id"]) == (201, "alice")
    assert refreshed == 200
    listed = request(server.url, "GET", ORDERS_URL, headers=bearer(new["access"]))[1]["results"]
    assert {listed_order["user_id"] for listed_order in listed} == {"alice"}


def test_lifetimes_are_short_by_default(server):
    access = jwt.decode(access_token(server, "bob"), options={"verify_signature": False})

    # simplejwt counts the access token's exp from the refresh token's making and its iat from its own, a moment
    # later: a second may turn in between.
    assert access["exp"] - access["iat"] in (5 * 60 - 1, 5 * 60)


@pytest.mark.parametrize(
    ("credentials", "status"),
    [({"username": "alice", "password": "wrong"}, 401), ({"username": "nobody", "password": "x"}, 401), ({}, 400)],
)
def test_a_failed_login_gets_no_token(server, credentials, status):
    answer, body = request(server.url, "POST", "/api/auth/token/", credentials)

    assert (answer, body["type"]) == (status, "validation_error" if status == 400 else "client_error")
    assert "access" not in body


def test_another_users_order_is_unknown_and_staff_see_every_order_and_the_metrics(server):
    alice, bob, ops = (access_token(server, name) for name in ["alice", "bob", "ops"])
    _, order = request(server.url, "POST", ORDERS_URL, {"item_ids": [1], "total_amount": "1"}, bearer(alice))
    path = f"{ORDERS_URL}{order['order_id']}/"

    assert request(server.url, "GET", path, headers=bearer(bob))[0] == 404
    assert request(server.url, "POST", f"{path}cancel/", headers=bearer(bob))[0] == 404
    assert request(server.url, "POST", ORDERS_URL, order_body(user_id="alice"), bearer(bob))[0] == 403
    assert request(server.url, "GET", "/api/metrics/", headers=bearer(alice))[0] == 403
    assert request(server.url, "GET", path, headers=bearer(ops))[0] == 200
    assert request(server.url, "GET", "/api/metrics/", headers=bearer(ops))[0] == 200
    assert request(server.url, "POST", ORDERS_URL, order_body(user_id="bob"), bearer(ops))[0] == 201


def own_token(secret: str, **claims) -> str:
    now = int(time.time())
    payload = {"token_type": "access", "user_id": 1, "jti": uuid.uuid4().hex, "iat": now, "exp": now + 300, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: own_token(SECRET_KEY, iat=int(time.time()) - 600, exp=int(time.time()) - 300), "token_expired"),
        (lambda: own_token("another-secret-key-of-enough-length-000000"), "token_not_valid"),
        (lambda: own_token(SECRET_KEY, token_type="refresh"), "token_not_valid"),
        (
            lambda: forged(
                {"alg": "none", "typ": "JWT"}, jwt.decode(own_token(SECRET_KEY), SECRET_KEY, ["HS256"]), None
            ),
            "token_not_valid",
        ),
    ],
    ids=["expired", "another key", "a refresh token", "alg none"],
)
def test_a_bad_token_of_ours_is_a_401(server, token, code):
    status, body = request(server.url, "GET", ORDERS_URL, headers=bearer(token()))

    assert (status, body["errors"][0]["attr"], body["errors"][0]["code"]) == (401, "Authorization", code)


def test_logins_are_locked_out_after_failures_and_throttled(processes):
    server = processes(API_AUTH="jwt", JWT_LOGIN_RATE="3/min", ADMIN_LOGIN_FAILURE_LIMIT="2", WEB_CONCURRENCY="1")
    create_users(server, USERS[0])

    failures = [login(server, "alice", "wrong") for _ in range(2)]
    locked_out, body = login(server, "alice")
    throttled, throttled_body = login(server, "alice")

    # As for the admin, the failure that reaches the limit locks, and the right password then gets no token.
    assert [(status, body["errors"][0]["code"]) for status, body in failures] == [
        (401, "no_active_account"),
        (429, "locked_out"),
    ]
    assert (locked_out, body["errors"][0]["code"]) == (429, "locked_out")
    assert (throttled, throttled_body["errors"][0]["code"]) == (429, "throttled")
