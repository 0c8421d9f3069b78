"""The admin: staff only, listing and search, the retry and cancel actions, the metrics summary on its index, and
login throttling."""

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.auth.models import User
from django.test import Client

from orders.models import Order
from orders.services import order_create
from tests.factories import OrderFactory
from tests.helpers import order_body, wait_for

CHANGELIST = "/admin/orders/order/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
def test_admin_is_for_staff_only(client):
    client.force_login(User.objects.create_user("customer", password="x"))
    assert client.get(CHANGELIST).status_code == 302

    client.force_login(User.objects.create_superuser("operator", password="x"))
    assert client.get(CHANGELIST).status_code == 200


def test_admin_index_shows_a_metrics_summary_linking_the_dashboard(admin_client):
    html = admin_client.get("/admin/").content.decode()

    assert 'id="metrics-summary"' in html
    assert 'href="/dashboard/"' in html


def test_admin_lists_searches_and_filters_orders(admin_client):
    order = OrderFactory(user_id="findme")
    OrderFactory(user_id="other")

    listing = admin_client.get(CHANGELIST)
    by_user = admin_client.get(CHANGELIST, {"q": "findme"})
    by_id = admin_client.get(CHANGELIST, {"q": str(order.order_id)})
    by_status = admin_client.get(CHANGELIST, {"status__exact": "PENDING"})
    detail = admin_client.get(f"{CHANGELIST}{order.order_id}/change/")

    assert listing.status_code == by_status.status_code == detail.status_code == 200
    assert list(by_user.context["cl"].result_list) == [order]
    assert list(by_id.context["cl"].result_list) == [order]
    assert b"findme" in detail.content


def test_admin_search_with_a_non_uuid_term_does_not_fail(admin_client):
    assert admin_client.get(CHANGELIST, {"q": "not a uuid"}).status_code == 200


def test_admin_shows_the_result_of_a_completed_order(admin_client):
    order = OrderFactory(status=Order.Status.COMPLETED, result={"transaction_id": "tx_4242"})

    page = admin_client.get(f"{CHANGELIST}{order.pk}/change/")

    assert b"tx_4242" in page.content


def test_admin_cancel_cancels_pending_orders_and_skips_others(admin_client):
    pending = OrderFactory()
    done = OrderFactory(status=Order.Status.COMPLETED)

    response = admin_client.post(
        CHANGELIST, {"action": "cancel_orders", "_selected_action": [str(pending.pk), str(done.pk)]}, follow=True
    )

    assert messages(response) == ["1 order(s) cancelled.", "1 order(s) skipped: not PENDING."]
    pending.refresh_from_db()
    done.refresh_from_db()
    assert (pending.status, done.status) == (Order.Status.CANCELLED, Order.Status.COMPLETED)


def test_admin_retry_sends_failed_orders_back_through_the_worker(order_worker, settings, admin_client):
    settings.ORDER_FAILURE_RATE = 1.0
    orders = [order_create(**order_body(total_amount=1))[0] for _ in range(3)]
    wait_for(lambda: Order.objects.filter(status=Order.Status.FAILED).count() == 3)
    settings.ORDER_FAILURE_RATE = 0.0

    response = admin_client.post(
        CHANGELIST, {"action": "retry_orders", "_selected_action": [str(order.pk) for order in orders]}, follow=True
    )

    assert "3 order(s) retried." in messages(response)
    wait_for(lambda: Order.objects.filter(status=Order.Status.COMPLETED).count() == 3)
    # Every failed attempt, then the one more.
    assert set(Order.objects.values_list("attempts", flat=True)) == {settings.ORDER_MAX_ATTEMPTS + 1}


# Admin login throttling (django-axes): a username, or an address, is locked after AXES_FAILURE_LIMIT failures.


class CountingHasher(MD5PasswordHasher):
    """A fast hasher that counts the passwords it hashes."""

    hashed = 0

    def encode(self, password, salt, *args, **kwargs):
        CountingHasher.hashed += 1
        return super().encode(password, salt, *args, **kwargs)


@pytest.fixture
def operator(settings):
    settings.PASSWORD_HASHERS = ["tests.test_admin.CountingHasher"]
    return User.objects.create_superuser("operator", password="right-password")


@pytest.fixture
def locks_at(settings) -> list[int]:
    """What failed logins answer until the last allowed one locks: the form again (200), then 429."""
    return [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]


def log_in(username: str, password: str, address: str, **headers: str) -> int:
    """One admin login from this address: 302 signed in, 200 the form again, 429 locked out."""
    response = Client(REMOTE_ADDR=address, **headers).post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )
    return response.status_code


@pytest.mark.django_db
def test_a_username_is_locked_whichever_address_tries_it(operator, locks_at):
    before = CountingHasher.hashed
    failures = [log_in("operator", "wrong", f"10.0.0.{number}") for number in range(1, len(locks_at) + 1)]
    hashed = CountingHasher.hashed

    assert failures == locks_at
    assert hashed - before == len(locks_at)  # each failure had its password checked
    assert log_in("operator", "right-password", "10.0.0.99") == 429
    assert CountingHasher.hashed == hashed  # refused before the password was checked
    assert log_in("someone", "wrong", "10.0.0.99") == 200  # the address itself is not locked


@pytest.mark.django_db
def test_an_address_is_locked_whichever_usernames_it_tries(operator, locks_at):
    failures = [log_in(f"guess{number}", "wrong", "10.0.0.1") for number in range(len(locks_at))]
    hashed = CountingHasher.hashed

    assert failures == locks_at
    assert log_in("operator", "right-password", "10.0.0.1") == 429
    assert CountingHasher.hashed == hashed
    assert log_in("operator", "right-password", "10.0.0.2") == 302


@pytest.mark.django_db
def test_behind_the_proxy_the_address_is_the_one_it_adds_to_x_forwarded_for(operator, locks_at, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.100"

    # A client may send its own X-Forwarded-For; the proxy appends the address it saw.
    failures = [
        log_in(f"guess{number}", "wrong", proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{number}, 203.0.113.1")
        for number in range(len(locks_at))
    ]

    assert failures == locks_at
    assert log_in("operator", "right-password", proxy, HTTP_X_FORWARDED_FOR="203.0.113.1") == 429
    assert log_in("operator", "right-password", proxy, HTTP_X_FORWARDED_FOR="203.0.113.2") == 302
