"""A provider's tokens (JWT_JWKS_URL) through a live server: accepted in RS256 and ES256, each user seeing only its
own orders, and every bad token refused with a 401 (a provider that is down: a 503), never a 500."""

import http.client
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import ORDERS_URL, children, order_body, request
from tests.jwks import Provider, bearer, forged


def call(server, method: str, path: str, token: str | None = None, body: dict | None = None, **headers: str):
    sent = {"Content-Type": "application/json", **headers} | (bearer(token) if token else {})
    return request(server.url, method, path, body, headers=sent)


def prometheus(server, token: str) -> http.client.HTTPResponse:
    """GET /metrics, whose answer is Prometheus' text."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", "/metrics", headers=bearer(token))
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def create(server, token: str, **fields) -> dict:
    status, created = call(server, "POST", ORDERS_URL, token, {"item_ids": [1], "total_amount": "5", **fields})
    assert status == 201, created
    return created


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_provider_token_names_the_user_whose_order_it_places(provider_server, provider, kid):
    user = f"auth0|{uuid.uuid4().hex}"

    created = create(provider_server, provider.token(user, kid=kid))

    assert created["user_id"] == user
    status, listed = call(provider_server, "GET", ORDERS_URL, provider.token(user, kid=kid))
    assert (status, [order["order_id"] for order in listed["results"]]) == (200, [created["order_id"]])


def test_the_keys_are_fetched_once_per_server_process_not_per_request(provider_server, provider):
    fetches = provider.fetches

    for kid in ["rsa-1", "ec-1"] * 10:
        create(provider_server, provider.token(kid=kid))

    serving_processes = len(children(provider_server.process.pid))
    assert provider.fetches - fetches <= serving_processes  # each fetches once, on its first token


def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed(provider: Provider, key, algorithm: str = "RS256", kid: str = "rsa-1", **claims) -> str:
    return jwt.encode(provider.claims("mallory", **claims), key, algorithm=algorithm, headers={"kid": kid})


NOW = int(time.time())
BAD_TOKENS = {
    "expired": lambda p: p.token(iat=NOW - 600, exp=NOW - 300),
    "not valid yet": lambda p: p.token(nbf=NOW + 3600),
    "issued in the future": lambda p: p.token(iat=NOW + 3600, exp=NOW + 7200),
    "another issuer": lambda p: p.token(iss="https://evil.example.test/"),
    "another audience": lambda p: p.token(aud="another-api"),
    "no audience": lambda p: jwt.encode(
        {key: value for key, value in p.claims("mallory").items() if key != "aud"},
        p.keys["rsa-1"][1],
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    ),
    "no expiry": lambda p: jwt.encode(
        {key: value for key, value in p.claims("mallory").items() if key != "exp"},
        p.keys["rsa-1"][1],
        algorithm="RS256",
        headers={"kid": "rsa-1"},
    ),
    "a bad signature": lambda p: signed(p, other_rsa_key()),
    "ES256 claimed for the RSA key": lambda p: signed(p, p.keys["ec-1"][1], "ES256", kid="rsa-1"),
    "alg none": lambda p: forged({"alg": "none", "kid": "rsa-1", "typ": "JWT"}, p.claims("mallory"), None),
    "HS256 keyed with the RSA public key": lambda p: forged(
        {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, p.claims("mallory"), p.public_pem()
    ),
    "an unknown kid": lambda p: signed(p, other_rsa_key(), kid="rsa-2"),
    "no kid": lambda p: jwt.encode(p.claims("mallory"), p.keys["rsa-1"][1], algorithm="RS256"),
    "a sub that is not a string": lambda p: p.token(sub=12345),
    "a sub with a control character": lambda p: p.token("mal\nlory"),
    "not a JWT": lambda p: "not-a-jwt",
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_bad_token_is_a_401_saying_why_and_changes_nothing(provider_server, provider, case):
    token = BAD_TOKENS[case](provider)

    status, body = call(provider_server, "POST", ORDERS_URL, token, order_body(user_id="mallory"))

    assert status == 401, body
    assert body["type"] == "client_error"
    [error] = body["errors"]
    assert error["attr"] == "Authorization"
    assert error["code"] == ("token_expired" if case == "expired" else "token_not_valid")
    assert provider_server.database.query("SELECT COUNT(*) FROM orders_order WHERE user_id = 'mallory'") == [(0,)]


def test_a_refusal_says_how_to_authenticate(provider_server, provider):
    response = prometheus(provider_server, provider.token(aud="another-api"))

    assert (response.status, response.getheader("WWW-Authenticate")) == (401, 'Bearer realm="api"')


def test_without_a_token_the_api_is_a_401_but_health_and_the_schema_stay_open(provider_server):
    assert call(provider_server, "GET", ORDERS_URL)[0] == 401
    assert call(provider_server, "GET", "/api/metrics/")[0] == 401
    assert call(provider_server, "GET", "/metrics")[0] == 401
    assert call(provider_server, "GET", "/healthz")[0] == 200
    assert call(provider_server, "GET", "/api/schema/?format=json")[0] == 200


def test_another_users_order_is_unknown_to_read_status_cancel_and_list(provider_server, provider):
    alice, bob = f"alice-{uuid.uuid4().hex}", f"bob-{uuid.uuid4().hex}"
    order = create(provider_server, provider.token(alice))
    path = f"{ORDERS_URL}{order['order_id']}/"
    unknown = f"{ORDERS_URL}{uuid.uuid4()}/"
    as_bob = provider.token(bob)

    for method, suffix in [("GET", ""), ("GET", "status/"), ("POST", "cancel/")]:
        status, body = call(provider_server, method, path + suffix, as_bob)
        assert (status, body) == call(provider_server, method, unknown + suffix, as_bob)  # no hint it exists
        assert status == 404
    assert call(provider_server, "GET", ORDERS_URL, as_bob)[1]["results"] == []
    assert call(provider_server, "GET", f"{ORDERS_URL}?user_id={alice}", as_bob)[1]["results"] == []
    assert call(provider_server, "GET", f"{path}status/", provider.token(alice))[1]["status"] == "PENDING"


def test_a_user_may_not_place_an_order_for_another_user(provider_server, provider):
    user = f"carol-{uuid.uuid4().hex}"

    status, body = call(provider_server, "POST", ORDERS_URL, provider.token(user), order_body(user_id="dave"))
    own = create(provider_server, provider.token(user), user_id=user)

    assert (status, body["errors"][0]["attr"]) == (403, "user_id")
    assert own["user_id"] == user
    assert provider_server.database.query("SELECT COUNT(*) FROM orders_order WHERE user_id = 'dave'") == [(0,)]


def test_each_user_has_its_own_idempotency_keys(provider_server, provider):
    users = [f"erin-{uuid.uuid4().hex}", f"frank-{uuid.uuid4().hex}"]

    def place(user: str) -> tuple[int, dict]:
        body = {"item_ids": [1], "total_amount": "5"}
        return call(provider_server, "POST", ORDERS_URL, provider.token(user), body, **{"Idempotency-Key": "k-1"})

    first = [place(user) for user in users]
    again = [place(user) for user in users]

    assert [status for status, _ in first + again] == [201] * 4
    assert first[0][1]["order_id"] != first[1][1]["order_id"]
    assert [order["order_id"] for _, order in again] == [order["order_id"] for _, order in first]
    assert [order["user_id"] for _, order in again] == users


@pytest.mark.parametrize(
    "who",
    ["a provider's admin scope (a string)", "a provider's admin role (a list)", "a service token"],
)
def test_an_operator_sees_every_order_and_the_metrics(provider_server, provider, who):
    order = create(provider_server, provider.token(f"gina-{uuid.uuid4().hex}"))
    token = {
        "a provider's admin scope (a string)": provider.token("ops", scope="openid orders:admin"),
        "a provider's admin role (a list)": provider.token("ops", kid="ec-1", scope=["orders:admin"]),
        "a service token": "service-token",
    }[who]

    status, listed = call(provider_server, "GET", f"{ORDERS_URL}?page_size=200", token)

    assert status == 200
    assert order["order_id"] in [listed_order["order_id"] for listed_order in listed["results"]]
    assert call(provider_server, "GET", f"{ORDERS_URL}{order['order_id']}/", token)[0] == 200
    assert call(provider_server, "GET", "/api/metrics/", token)[0] == 200
    assert prometheus(provider_server, token).status == 200
    assert call(provider_server, "POST", f"{ORDERS_URL}{order['order_id']}/cancel/", token)[0] == 200


def test_a_user_may_not_read_the_metrics(provider_server, provider):
    token = provider.token("henry", scope="openid orders:read")

    for path in ["/api/metrics/", "/metrics"]:
        status, body = call(provider_server, "GET", path, token)
        assert (status, body["errors"][0]["code"]) == (403, "permission_denied")


def test_a_provider_that_is_down_is_a_503_that_says_so_until_it_is_back(processes):
    provider = Provider().start()
    provider.stop()  # its port now refuses connections
    server = processes(**provider.env())
    token = provider.token("ivy")

    status, body = call(server, "GET", ORDERS_URL, token)
    provider.start()
    try:
        recovered = call(server, "GET", ORDERS_URL, token)[0]
    finally:
        provider.stop()

    assert (status, body["type"], body["errors"][0]["code"]) == (503, "server_error", "identity_provider_unavailable")
    assert recovered == 200
