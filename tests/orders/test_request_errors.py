"""Malformed requests: each gets a JSON 4xx that names what is wrong, and nothing is stored."""

import pytest

from orders.models import Order

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


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
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


@pytest.mark.parametrize("method", ["options", "delete", "put"])
@pytest.mark.parametrize("url", ["/api/docs/", "/api/schema/"])
def test_docs_and_schema_answer_other_methods_with_a_json_405(client, method, url):
    response = getattr(client, method)(url)

    assert response.status_code == 405
    assert response.json()["errors"][0]["attr"] == "method"


def test_post_to_a_mistyped_url_is_a_json_404_even_with_csrf_checks():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/api/orders", b"{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "path"


def test_head_on_healthz_is_allowed(client):
    assert client.head("/healthz").status_code == 200
