"""Idempotency-Key on POST /api/orders/, with Stripe's semantics."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from orders.models import IdempotencyKey, Order
from tests.helpers import run_concurrently

URL = "/api/orders/"
BODY = {"user_id": "user44", "item_ids": [1, 2, 3], "total_amount": 90.99}


def post(api, body=BODY, key="key-1"):
    return api.post(URL, json.dumps(body), content_type="application/json", headers={"Idempotency-Key": key})


@pytest.mark.django_db
def test_repeat_with_same_key_and_body_replays_the_original_order(api):
    first = post(api)

    again = post(api)

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert again.json()["order_id"] == first.json()["order_id"]
    assert again["Location"] == first["Location"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_quoted_and_bare_key_are_the_same_key(api):
    first = post(api, key="abc-123")

    again = post(api, key='"abc-123"')

    assert again.json()["order_id"] == first.json()["order_id"]
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_a_different_body_is_a_422_and_creates_nothing(api):
    first = post(api)

    response = post(api, {**BODY, "total_amount": 1})

    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert list(Order.objects.values_list("pk", flat=True)) == [Order.objects.get().pk]
    assert str(Order.objects.get().pk) == first.json()["order_id"]


@pytest.mark.django_db
def test_different_keys_create_different_orders(api):
    post(api, key="a")
    post(api, key="b")

    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_quoted_key_escapes_are_decoded_as_rfc_8941_strings(api):
    first = post(api, key='"a\\"b"')

    again = post(api, key='"a\\"b"')

    assert again.json()["order_id"] == first.json()["order_id"]
    assert IdempotencyKey.objects.get().key == 'a"b'


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", '""', "x" * 256, "caf\u00e9", "tab\there", '"unterminated', '"bad\\x"', 'a"b'])
def test_malformed_key_is_a_400_naming_the_header(api, key):
    response = post(api, key=key)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_key_of_255_characters_is_accepted(api):
    assert post(api, key="k" * 255).status_code == 201


@pytest.mark.django_db
def test_invalid_body_does_not_use_up_the_key(api):
    assert post(api, {**BODY, "total_amount": -1}).status_code == 400

    assert post(api).status_code == 201
    assert "Idempotent-Replayed" not in post(api, {**BODY, "total_amount": 2}, key="other")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_with_one_key_create_exactly_one_order():
    responses = run_concurrently(lambda: post(APIClient(), key="concurrent"), 50)

    assert Order.objects.count() == 1
    order_id = str(Order.objects.get().pk)
    assert all(response.status_code in (201, 409) for response in responses)
    assert {response.json()["order_id"] for response in responses if response.status_code == 201} == {order_id}
    assert sum("Idempotent-Replayed" not in response for response in responses if response.status_code == 201) == 1


@pytest.mark.django_db
def test_prune_deletes_keys_older_than_the_retention_but_keeps_younger_ones(api):
    post(api, key="old")
    post(api, key="young")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    IdempotencyKey.objects.filter(key="young").update(created_at=timezone.now() - timedelta(hours=23))

    call_command("prune_idempotency_keys")

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    assert Order.objects.count() == 2
