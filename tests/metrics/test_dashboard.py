"""The dashboard page (the admin index's summary of it is in tests/test_admin.py)."""

import re

import pytest

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
