"""The dashboard page (the admin index's summary of it is in tests/test_admin.py)."""

import re

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_dashboard_is_self_contained_html_with_every_status(client):
    response = client.get("/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no CDN: it works offline
    assert all(
        f'data-status="{status}"' in html for status in ["PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
    )
    assert 'name="viewport"' in html


def test_with_the_api_closed_the_dashboard_is_for_staff_signed_in_to_the_admin(client, settings):
    settings.API_OPEN = False
    login_page = "/admin/login/?next=/dashboard/"

    anonymous = client.get("/dashboard/")
    client.force_login(User.objects.create_user("customer"))
    customer = client.get("/dashboard/")
    client.force_login(User.objects.create_user("ops", is_staff=True))

    assert (anonymous.status_code, anonymous["Location"]) == (302, login_page)
    assert (customer.status_code, customer["Location"]) == (302, login_page)
    assert client.get("/dashboard/").status_code == 200


def test_every_number_on_the_dashboard_is_in_the_json_webhooks_included(client):
    html = client.get("/dashboard/").content.decode()
    metrics = client.get("/api/metrics/").json()

    paths = re.findall(r'data-metric="([^"]+)"', html)
    assert {
        "webhooks.deliveries.pending",
        "webhooks.deliveries.succeeded",
        "webhooks.deliveries.failed",
        "webhooks.latency.p50",
        "webhooks.latency.p99",
    } <= set(paths)
    for path in paths:
        value = metrics
        for key in path.split("."):
            assert key in value, path  # the page's render() reads it from /api/metrics/
            value = value[key]
    assert "<h2>Webhooks</h2>" in html
