"""Shared fixtures: an API client, fast processing, and a real server in a subprocess."""

import pytest
from rest_framework.test import APIClient

from tests.helpers import Server


@pytest.fixture(autouse=True)
def no_processing_delay(settings):
    """The suite runs with ORDER_PROCESSING_SECONDS=0."""
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.0)


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def server(tmp_path):
    """A running server, stopped by its PID when the test ends, whatever happened."""
    running = Server(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()
