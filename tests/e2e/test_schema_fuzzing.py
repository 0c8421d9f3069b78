"""schemathesis against a live server's own /api/schema/ with every check on: no 5xx, every response as the schema
says, every schema-valid request accepted and every invalid one refused; then the links from a created order."""

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from tests.helpers import Server, SqliteDatabase, request

SEED = 20261128
CONFIG = {
    "seed": SEED,
    "request-timeout": 30,  # a hung server fails the test instead of stalling the suite
    # A valid request may still meet the state it finds: an unknown order (404), an order that is no longer PENDING
    # or an order_id already taken (409), an Idempotency-Key already used with another body (422).
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "422"]}},
    # Whether a URL may receive webhooks depends on where it points (webhooks/addresses.py), which no schema can say:
    # a 400 naming `url` is an answer to a schema-valid registration too.
    "operations": [
        {
            "include-operation-id": "webhooks_create",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400"]}},
        }
    ],
}
SETTINGS = hypothesis.settings(deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One live server for the module, without its order worker: an order stays PENDING until cancelled, so the
    same calls get the same answers. Stopped by its PID at the end."""
    workdir = tmp_path_factory.mktemp("fuzz")
    # Any webhook URL is taken without a DNS lookup, so that fuzzing talks to 127.0.0.1 only; without the worker, no
    # webhook is ever sent.
    env = {"ORDER_WORKER_AUTOSTART": "0", "WEBHOOK_ALLOW_PRIVATE_URLS": "1"}
    server = Server(SqliteDatabase(workdir / "orders.sqlite3"), workdir / "server.log", **env)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{server.url}/api/schema/?format=json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(SETTINGS, max_examples=60)
def test_each_operation_conforms_to_its_schema(case):
    case.call_and_validate()


def test_a_created_order_links_to_its_read_status_and_cancel(server):
    _, api = request(server.url, "GET", "/api/schema/?format=json")
    create = api["paths"]["/api/orders/"]["post"]
    links = create["responses"]["201"]["links"]

    assert {link["operationId"] for link in links.values()} == {"orders_retrieve", "orders_status", "orders_cancel"}
    assert {link["parameters"]["order_id"] for link in links.values()} == {"$response.body#/order_id"}


def test_scenarios_through_the_links_conform_to_the_schema(api_schema, server):
    run_scenarios(api_schema, server)


def run_scenarios(api_schema, server) -> None:
    """40 scenarios of up to 6 calls that follow the schema's links."""

    class Scenarios(api_schema.as_state_machine()):
        def setup(self):
            # Each scenario starts from an empty database: replayed, the same calls get the same answers, which
            # Hypothesis requires (a taken order_id would otherwise turn a replayed 201 into a 409).
            server.database.query("DELETE FROM orders_idempotencykey")
            server.database.query("DELETE FROM orders_order")

    hypothesis.seed(SEED)(Scenarios).run(settings=hypothesis.settings(SETTINGS, max_examples=40, stateful_step_count=6))
