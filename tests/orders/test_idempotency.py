"""Idempotency-Key on POST /api/orders/, with Stripe's semantics."""

import sqlite3
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from order_system.auth import ApiClient
from orders.models import IdempotencyKey, Order
from tests.helpers import ROOT, SqliteDatabase, clean_env, order_body, post_order, request, run_concurrently

URL = "/api/orders/"
BODY = order_body()


@pytest.fixture
def database(tmp_path):
    """SQLite, whatever DATABASE_URL names: keys from before callers are written into the file with sqlite3."""
    return SqliteDatabase(tmp_path / "orders.sqlite3")


def post(api, body=BODY, key="key-1"):
    return post_order(api, body, **{"Idempotency-Key": key})


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


def signed_in_user():
    return User.objects.create_user("staff", is_staff=True)


CALLERS = {
    "a token": lambda: ApiClient(pk="a" * 16),
    "another token": lambda: ApiClient(pk="b" * 16),
    "a signed-in user": signed_in_user,
    "nobody (an open API)": lambda: None,
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [("a token", "another token"), ("a token", "a signed-in user"), ("nobody (an open API)", "a token")],
)
def test_the_same_key_from_two_callers_makes_two_orders_and_each_replays_its_own(first, second):
    clients = {}
    for caller in (first, second):
        clients[caller] = APIClient()
        clients[caller].force_authenticate(CALLERS[caller]())

    created = {caller: post(client) for caller, client in clients.items()}
    replayed = {caller: post(client) for caller, client in clients.items()}

    assert Order.objects.count() == 2
    assert created[first].json()["order_id"] != created[second].json()["order_id"]
    assert not any("Idempotent-Replayed" in response for response in created.values())
    for caller in clients:
        assert replayed[caller]["Idempotent-Replayed"] == "true"
        assert replayed[caller].json()["order_id"] == created[caller].json()["order_id"]


def test_api_tokens_each_have_their_own_idempotency_keys(processes):
    server = processes(API_TOKENS="token-a,token-b")

    def create(token: str) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", "Idempotency-Key": "k"}
        return request(server.url, "POST", URL, BODY, headers=headers)

    (status_a, order_a), (status_b, order_b) = create("token-a"), create("token-b")
    again_a, again_b = create("token-a"), create("token-b")

    assert status_a == status_b == 201
    assert order_a["order_id"] != order_b["order_id"]
    assert (again_a[1]["order_id"], again_b[1]["order_id"]) == (order_a["order_id"], order_b["order_id"])
    assert server.database.query("SELECT COUNT(*) FROM orders_order") == [(2,)]
    assert len(server.database.query("SELECT DISTINCT caller FROM orders_idempotencykey")) == 2


def test_keys_stored_before_keys_had_callers_still_belong_to_the_open_api(processes, database):
    command = [sys.executable, "manage.py", "migrate", "orders", "0004", "--noinput", "-v0"]
    subprocess.run(command, cwd=ROOT, env=clean_env(DATABASE_URL=database.url), check=True, timeout=120)
    order_id, now = uuid.uuid4().hex, timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(database.path) as db:
        db.execute(
            "INSERT INTO orders_order (order_id, user_id, item_ids, total_amount, status, attempts, times_failed,"
            " failure_reason, created_at, available_at, updated_at) VALUES (?, 'u', '[1]', '1', 'COMPLETED', 1, 0,"
            " '', ?, ?, ?)",
            (order_id, now, now, now),
        )
        db.execute(
            "INSERT INTO orders_idempotencykey (key, fingerprint, order_id, created_at) VALUES ('old', ?, ?, ?)",
            ("0" * 64, order_id, now),
        )

    server = processes()  # migrates to the latest
    headers = {"Content-Type": "application/json", "Idempotency-Key": "old"}
    status, body = request(server.url, "POST", URL, BODY, headers=headers)

    assert (status, body["errors"][0]["attr"]) == (422, "Idempotency-Key")  # known, with another request's body
    assert database.query("SELECT caller, key, order_id FROM orders_idempotencykey") == [("", "old", order_id)]
