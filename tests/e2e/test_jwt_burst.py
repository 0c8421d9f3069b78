"""The README's 1,000-order burst with JWT on, each order placed by a user of its own with a provider's token, against
a real server: every order accepted for its own user and processed."""

import asyncio

import httpx

from tests.helpers import ORDERS_URL, wait_for
from tests.jwks import Provider

ORDERS = 1_000


def test_1000_concurrent_orders_each_from_its_own_user_are_all_accepted_and_processed(processes, database):
    provider = Provider().start()
    try:
        server = processes(**provider.env())
        tokens = {
            f"user{number}": provider.token(f"user{number}", kid=("rsa-1", "ec-1")[number % 2])
            for number in range(ORDERS)
        }

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=ORDERS, max_keepalive_connections=ORDERS)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            ORDERS_URL,
                            json={"item_ids": [1, 2, 3], "total_amount": 90.99},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        for token in tokens.values()
                    )
                )

        responses = asyncio.run(burst())
    finally:
        provider.stop()

    assert [response.status_code for response in responses] == [201] * ORDERS
    assert [response.json()["user_id"] for response in responses] == list(tokens)
    assert database.query("SELECT COUNT(DISTINCT user_id) FROM orders_order") == [(ORDERS,)]
    wait_for(lambda: database.statuses() == {"COMPLETED": ORDERS}, timeout=120)
