"""The webhooks API: registering, listing, reading, removing endpoints and rotating their secrets; who may."""

import json
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from order_system.auth import ApiClient
from webhooks.models import Delivery, Endpoint
from webhooks.services import deliveries_claim
from webhooks.signing import signature_headers

URL = "/api/webhooks/"
pytestmark = pytest.mark.django_db


def register(api, **fields):
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"], "description": "shop", **fields}
    return api.post(URL, json.dumps(body), content_type="application/json")


def test_registering_returns_201_with_the_secret_shown_once(api):
    created = register(api, events=["order.created", "order.completed"])

    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert len(Webhook(endpoint["secret"])._whsecret) == 32
    assert endpoint["events"] == ["order.created", "order.completed"]
    assert (endpoint["url"], endpoint["description"], endpoint["disabled_at"]) == (
        "http://127.0.0.1:9/hook",
        "shop",
        None,
    )
    listed = api.get(URL).json()
    read = api.get(f"{URL}{endpoint['id']}/").json()
    assert [item["id"] for item in listed] == [endpoint["id"]]
    assert "secret" not in listed[0] and "secret" not in read
    assert read == {name: value for name, value in endpoint.items() if name != "secret"}


def test_deleting_removes_the_endpoint_and_its_deliveries(api):
    endpoint_id = register(api).json()["id"]
    Delivery.objects.create(
        endpoint_id=endpoint_id, message_id="msg_1", event_type="order.created", order_id=endpoint_id, body="{}"
    )

    assert api.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert api.get(f"{URL}{endpoint_id}/").status_code == 404
    assert api.delete(f"{URL}{endpoint_id}/").status_code == 404
    assert (Endpoint.objects.count(), Delivery.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://127.0.0.1/hook"}, "url"),
        ({"events": ["order.shipped"]}, "events"),
        ({"events": []}, "events"),
        ({"events": "*"}, "events"),
        ({"description": 5}, "description"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(api, fields, field):
    response = register(api, **fields)

    assert response.status_code == 400
    assert {error["attr"].partition(".")[0] for error in response.json()["errors"]} == {field}
    assert Endpoint.objects.count() == 0


def test_plain_http_is_refused_unless_allowed(api, settings):
    settings.WEBHOOK_ALLOW_HTTP = False

    response = register(api)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "url"
    assert register(api, url="https://hooks.example.com/in").status_code == 201


def test_with_the_api_closed_only_service_tokens_and_staff_manage_endpoints(api, settings):
    settings.API_OPEN = False
    user = User.objects.create_user("customer")
    api.force_authenticate(user, token="a-users-jwt")
    assert register(api).status_code == 403
    assert api.get(URL).status_code == 403

    api.force_authenticate(ApiClient(pk="a" * 16), token="service-token")
    created = register(api)
    assert created.status_code == 201
    assert api.get(URL).status_code == 200

    api.force_authenticate(User.objects.create_user("ops", is_staff=True))
    assert api.post(f"{URL}{created.json()['id']}/rotate-secret/").status_code == 200


def test_rotating_signs_with_both_secrets_during_the_grace_period_then_with_the_new_one_only(api, settings):
    settings.WEBHOOK_ROTATION_GRACE_SECONDS = 3600
    created = register(api).json()
    Delivery.objects.create(
        endpoint_id=created["id"], message_id="msg_1", event_type="order.created", order_id=created["id"], body="{}"
    )

    rotated = api.post(f"{URL}{created['id']}/rotate-secret/")

    assert rotated.status_code == 200
    old, new = created["secret"], rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    now = timezone.now()
    assert created["previous_secret_expires_at"] is None
    grace_ends = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert now + timedelta(minutes=59) < grace_ends <= now + timedelta(hours=1)
    assert (
        api.get(f"{URL}{created['id']}/").json()["previous_secret_expires_at"]
        == rotated.json()["previous_secret_expires_at"]
    )
    (during,) = deliveries_claim(limit=10, now=now)
    headers = signature_headers(message_id="msg_1", body="{}", signing_secrets=during.signing_secrets, at=now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify("{}", headers)
    Webhook(new).verify("{}", headers)

    later = now + timedelta(hours=1, seconds=1)
    Delivery.objects.update(leased_until=None)
    (after,) = deliveries_claim(limit=10, now=later)
    headers = signature_headers(message_id="msg_1", body="{}", signing_secrets=after.signing_secrets, at=timezone.now())
    Webhook(new).verify("{}", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify("{}", headers)


def test_rotating_an_unknown_endpoint_is_a_404_and_a_body_a_400(api):
    endpoint_id = register(api).json()["id"]

    assert api.post(f"{URL}00000000-0000-0000-0000-000000000000/rotate-secret/").status_code == 404
    assert api.post(f"{URL}nonsense/rotate-secret/").status_code == 404
    with_body = api.post(f"{URL}{endpoint_id}/rotate-secret/", json.dumps({"x": 1}), content_type="application/json")
    assert with_body.status_code == 400
