"""The schema fuzzing of test_schema_fuzzing.py once more with JWT on, as a user with a valid token: the schema's
security schemes, the login endpoints and a user's create (user_id optional) hold as the server answers."""

import hypothesis
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from tests.auth.conftest import create_users
from tests.e2e.test_schema_fuzzing import CONFIG, SEED, SETTINGS, run_scenarios
from tests.helpers import Server, SqliteDatabase, request


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A live server signing its own tokens, without its order worker; stopped by its PID at the end."""
    workdir = tmp_path_factory.mktemp("fuzz-jwt")
    env = {"API_AUTH": "jwt", "JWT_ACCESS_TOKEN_MINUTES": "60", "ORDER_WORKER_AUTOSTART": "0"}
    server = Server(SqliteDatabase(workdir / "orders.sqlite3"), workdir / "server.log", **env)
    server.start()
    create_users(server, ("fuzzer", "fuzzer-pw-4e1b8d", False))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    status, tokens = request(
        server.url, "POST", "/api/auth/token/", {"username": "fuzzer", "password": "fuzzer-pw-4e1b8d"}
    )
    assert status == 200, tokens
    config = {
        **CONFIG,
        "auth": {"openapi": {"jwtAuth": {"bearer": tokens["access"]}}},  # the schema's scheme, as Authorize uses it
        # Valid requests a user's token may still see refused: a login with made-up credentials (401), throttled or
        # locked out (429), and an order for a user_id other than the user's own (403), which no schema can name.
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}
        },
        # Webhooks are an operator's: a user's token gets its 403 before any URL is looked at.
        "operations": [],
    }
    return schemathesis.openapi.from_url(
        f"{server.url}/api/schema/?format=json", config=SchemathesisConfig.from_dict(config)
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.seed(SEED)
@hypothesis.settings(SETTINGS, max_examples=60)
def test_each_operation_conforms_to_its_schema_with_a_users_token(case):
    case.call_and_validate()


def test_the_schema_declares_the_bearer_schemes_for_authorize(server):
    _, api = request(server.url, "GET", "/api/schema/?format=json")

    jwt_scheme = api["components"]["securitySchemes"]["jwtAuth"]
    assert (jwt_scheme["type"], jwt_scheme["scheme"], jwt_scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert {"jwtAuth": []} in api["paths"]["/api/orders/"]["post"]["security"]
    assert "security" not in api["paths"]["/api/auth/token/"]["post"]  # a login needs no token
    assert "user_id" not in api["components"]["schemas"]["UserOrderCreateInputRequest"]["required"]


def test_scenarios_through_the_links_conform_to_the_schema_with_a_users_token(api_schema, server):
    run_scenarios(api_schema, server)
