"""schemathesis against the live server's own /api/schema/: no 5xx, and every response as the schema says."""

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance

from tests.helpers import Server, SqliteDatabase


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    """One live server for the whole module, stopped by its PID at the end."""
    workdir = tmp_path_factory.mktemp("fuzz")
    server = Server(SqliteDatabase(workdir / "orders.sqlite3"), workdir / "server.log")
    server.start()
    try:
        yield schemathesis.openapi.from_url(f"{server.url}/api/schema/?format=json")
    finally:
        server.stop()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.seed(20261125)
@hypothesis.settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_api_conforms_to_its_schema(case):
    # A cursor is opaque: no schema can tell a valid one from any other string, so schema-valid input may still be
    # a 400. Every other check runs, no 5xx and responses matching the schema among them.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
