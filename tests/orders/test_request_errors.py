"""Malformed requests: each gets a JSON 4xx that names what is wrong, and nothing is stored."""

import http.client
import io
import json
import socket

import pytest

from orders.models import IdempotencyKey, Order
from tests.factories import OrderFactory
from tests.helpers import Server, SqliteDatabase, order_body

pytestmark = pytest.mark.django_db

URL = "/api/orders/"


def assert_error(response, status: int, attr: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["type"] in {"validation_error", "client_error"}
    assert [error["attr"] for error in body["errors"]] == [attr]
    assert body["errors"][0]["detail"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"user_id": "u", ',
        b"not json",
        b'{"user_id": "u", "item_ids": [1], "total_amount": NaN}',
        b'{"user_id": "u", "item_ids": [1], "total_amount": Infinity}',
        b'{"user_id": "u", "user_id": "v", "item_ids": [1], "total_amount": 1}',
        b"\xef\xbb\xbf{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"item_ids": [' + b"9" * 5000 + b"]}",
    ],
)
def test_malformed_json_is_a_400_about_the_body(api, raw):
    response = api.post(URL, raw, content_type="application/json")

    assert_error(response, 400, "body")
    assert "sys." not in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "The body is not valid JSON: it is nested too deeply."),
        (b'{"item_ids": [' + b"9" * 101 + b"]}", "The body is not valid JSON: a whole number has more than 100 digits"),
    ],
)
def test_a_body_too_deep_or_with_too_long_a_number_is_refused_in_our_words(api, raw, detail):
    response = api.post(URL, raw, content_type="application/json")

    assert_error(response, 400, "body")
    assert response.json()["errors"][0]["detail"] == detail  # not Python's, which names its internals


def test_empty_body_is_a_400_naming_each_required_field(api):
    response = api.post(URL, b"", content_type="application/json")

    assert response.status_code == 400
    assert {error["attr"] for error in response.json()["errors"]} == {"user_id", "item_ids", "total_amount"}


@pytest.mark.parametrize("raw", [b"[]", b'"order"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_a_400_about_the_body(api, raw):
    assert_error(api.post(URL, raw, content_type="application/json"), 400, "body")


def test_invalid_utf8_is_a_400_about_the_body(api):
    raw = b'{"user_id": "\xff\xfe", "item_ids": [1], "total_amount": 1}'

    assert_error(api.post(URL, raw, content_type="application/json"), 400, "body")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=b"],
)
def test_unsupported_content_type_is_a_415(api, content_type):
    response = api.post(URL, b"user_id=u", content_type=content_type)

    assert_error(response, 415, "Content-Type")


def test_body_over_one_megabyte_is_a_413(api):
    raw = b'{"user_id": "' + b"x" * (1024 * 1024) + b'"}'

    assert_error(api.post(URL, raw, content_type="application/json"), 413, "body")


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing-here/")

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "path"


def test_missing_trailing_slash_is_a_json_404_not_a_redirect_or_500(api):
    response = api.post(URL.rstrip("/"), b"{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "path"


def test_healthz_answers_without_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "url", ["/api/orders/?format=xml", "/api/metrics/?format=api", "/api/orders/x/status/?format=html"]
)
def test_an_unknown_format_is_a_json_404_not_a_500(api, url):
    response = api.get(url)

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "path"


@pytest.mark.parametrize("method", ["options", "delete", "put", "post", "trace"])
@pytest.mark.parametrize("url", ["/api/docs/", "/api/schema/", "/healthz", "/readyz", "/metrics", "/dashboard/"])
def test_pages_outside_the_api_answer_other_methods_with_a_json_405(method, url):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).generic(method.upper(), url)

    assert response.status_code == 405
    assert response.json()["errors"][0]["attr"] == "method"


def test_post_to_a_mistyped_url_is_a_json_404_even_with_csrf_checks():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/api/orders", b"{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "path"


def test_a_form_without_its_csrf_token_is_a_json_403(client):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})

    assert response.status_code == 403
    assert response.json()["errors"][0]["attr"] == "CSRF"


def test_options_describes_the_collection_to_its_users(api):
    assert api.options(URL).json()["description"] == "Orders: list them, newest first (GET), or place one (POST)."


def test_head_on_healthz_is_allowed(client):
    assert client.head("/healthz").status_code == 200


# Strict HTTP: what a body's headers say must be what the server reads, or the request is refused.

ORDER = json.dumps(order_body()).encode()


def test_a_chunked_body_is_a_411_asking_for_a_content_length(api):
    response = api.post(URL, ORDER, content_type="application/json", headers={"Transfer-Encoding": "chunked"})

    assert_error(response, 411, "Content-Length")


def test_an_http2_body_without_a_content_length_is_a_411(api):
    # What granian hands Django for an HTTP/2 request whose body came without content-length (curl -T - over h2c).
    response = api.generic(
        "POST", URL, SERVER_PROTOCOL="HTTP/2", CONTENT_TYPE="application/json", **{"wsgi.input": io.BytesIO(ORDER)}
    )

    assert_error(response, 411, "Content-Length")


def test_an_http2_request_without_a_body_is_served(api):
    # A real server's input, as io.BytesIO, reads b"" at the end of the stream; the test client's own would raise.
    assert api.generic("GET", URL, SERVER_PROTOCOL="HTTP/2", **{"wsgi.input": io.BytesIO()}).status_code == 200


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate", "x-gzip", "identity, gzip", ""])
def test_a_content_encoding_other_than_identity_is_a_415(api, encoding):
    response = api.post(URL, ORDER, content_type="application/json", headers={"Content-Encoding": encoding})

    assert_error(response, 415, "Content-Encoding")
    assert response["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("encoding", ["identity", "IDENTITY"])
def test_the_identity_content_encoding_is_accepted(api, encoding):
    response = api.post(URL, ORDER, content_type="application/json", headers={"Content-Encoding": encoding})

    assert response.status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [
        "*/*",
        "application/*",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=utf-8; boundary=x",
        "application/json; version=2",
    ],
)
def test_a_content_type_other_than_json_in_utf8_is_a_415(api, content_type):
    response = api.generic("POST", URL, ORDER, content_type=content_type)

    assert_error(response, 415, "Content-Type")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON", "application/json; charset=utf-8", 'application/json;CHARSET="UTF-8"'],
)
def test_json_with_an_optional_utf8_charset_is_accepted(api, content_type):
    assert api.post(URL, ORDER, content_type=content_type).status_code == 201


def test_two_idempotency_key_headers_are_a_400(api):
    # WSGI servers join repeated headers with a comma (gunicorn and granian alike; see the raw-socket test below).
    response = api.post(URL, ORDER, content_type="application/json", HTTP_IDEMPOTENCY_KEY="a,b")

    assert_error(response, 400, "Idempotency-Key")


def test_a_quoted_idempotency_key_may_hold_a_comma(api):
    response = api.post(URL, ORDER, content_type="application/json", headers={"Idempotency-Key": '"a,b"'})

    assert response.status_code == 201
    assert IdempotencyKey.objects.get().key == "a,b"


@pytest.mark.parametrize("key", ["a b", "a\x0b", "\x0ca"])
def test_an_idempotency_key_outside_its_schema_pattern_is_a_400(api, key):
    response = api.post(URL, ORDER, content_type="application/json", headers={"Idempotency-Key": key})

    assert_error(response, 400, "Idempotency-Key")


def test_spaces_around_an_idempotency_key_are_not_part_of_it(api):
    first = api.post(URL, ORDER, content_type="application/json", headers={"Idempotency-Key": " k\t"})
    again = api.post(URL, ORDER, content_type="application/json", headers={"Idempotency-Key": "k"})

    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["order_id"] == first.json()["order_id"]


@pytest.fixture
def cancel_url():
    return f"/api/orders/{OrderFactory().order_id}/cancel/"


@pytest.mark.parametrize("body", [b"{}", ORDER, b"x"])
def test_a_body_on_cancel_is_a_400_and_cancels_nothing(api, cancel_url, body):
    response = api.post(cancel_url, body, content_type="application/json")

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["body"]
    assert Order.objects.get().status == Order.Status.PENDING


@pytest.mark.parametrize(
    ("headers", "status", "attr"),
    [
        ({"Transfer-Encoding": "chunked"}, 411, "Content-Length"),
        ({"Content-Encoding": "gzip"}, 415, "Content-Encoding"),
        ({"Content-Type": "*/*"}, 415, "Content-Type"),
    ],
)
def test_a_body_on_cancel_gets_the_same_checks_as_any_body(api, cancel_url, headers, status, attr):
    content_type = headers.pop("Content-Type", "application/json")

    response = api.post(cancel_url, b"{}", content_type=content_type, headers=headers)

    assert response.status_code == status
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert Order.objects.get().status == Order.Status.PENDING


def test_cancel_without_a_body_needs_no_content_type(api, cancel_url):
    assert api.generic("POST", cancel_url).status_code == 200


# The same rules over real sockets, against a real server: what its WSGI layer hands Django is what they guard.


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """One real server for this module's raw-socket tests; starting one per test would triple their time."""
    workdir = tmp_path_factory.mktemp("raw")
    server = Server(SqliteDatabase(workdir / "orders.sqlite3"), workdir / "server.log")
    server.start()
    yield server
    server.stop()


def raw_request(server, head: bytes, body: bytes = b"", half_close: bool = False) -> tuple[int, dict]:
    """Send bytes as they are; half_close shuts our sending side, as a client that gave up mid-body would."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.replace(b"\n", b"\r\n") + b"\r\n" + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


POST_HEAD = b"POST /api/orders/ HTTP/1.1\nHost: 127.0.0.1\nConnection: close\nContent-Type: application/json\n"


def test_a_chunked_body_over_a_real_socket_is_a_411_and_stores_nothing(live):
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(ORDER), ORDER)

    status, body = raw_request(live, POST_HEAD + b"Transfer-Encoding: chunked\n", chunked)

    assert (status, [error["attr"] for error in body["errors"]]) == (411, ["Content-Length"])
    assert live.database.query("SELECT COUNT(*) FROM orders_order") == [(0,)]


def test_a_body_shorter_than_its_content_length_is_a_400_and_stores_nothing(live):
    head = POST_HEAD + b"Content-Length: %d\n" % (len(ORDER) + 10)

    status, body = raw_request(live, head, ORDER, half_close=True)

    assert (status, [error["attr"] for error in body["errors"]]) == (400, ["body"])
    assert body["errors"][0]["code"] == "truncated"
    assert live.database.query("SELECT COUNT(*) FROM orders_order") == [(0,)]


def test_two_idempotency_key_headers_over_a_real_socket_are_a_400(live):
    head = POST_HEAD + b"Content-Length: %d\nIdempotency-Key: a\nIdempotency-Key: b\n" % len(ORDER)

    status, body = raw_request(live, head, ORDER)

    assert (status, [error["attr"] for error in body["errors"]]) == (400, ["Idempotency-Key"])
