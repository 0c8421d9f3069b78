"""The dashboard page and the admin summary."""

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


def test_admin_index_shows_a_metrics_summary_linking_the_dashboard(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    html = client.get("/admin/").content.decode()

    assert 'id="metrics-summary"' in html
    assert 'href="/dashboard/"' in html
