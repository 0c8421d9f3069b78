"""Headless Chromium on the live dashboard while orders are in flight."""

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, place_orders, request, wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


def needs_browser():
    """Skip without Chromium or Playwright, unless CI demands them (REQUIRE_SERVICES=1)."""
    missing = None
    if not shutil.which(CHROMIUM):
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (requirements-dev.txt)"
    if missing and os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)


def page_numbers(page) -> dict[str, int]:
    """The status tiles and total as the page shows them."""
    numbers = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-status], [data-metric="total_orders"]')]
              .map(el => [el.dataset.status || 'total', el.textContent.replace(/[^0-9]/g, '')]))"""
    )
    return {key: int(value) for key, value in numbers.items() if value}


def test_dashboard_shows_orders_moving_and_matches_the_api(processes, database):
    needs_browser()
    from playwright.sync_api import sync_playwright

    server = processes(ORDER_PROCESSING_SECONDS="0.5-1.5", ORDER_CONCURRENCY="2")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.goto(f"{server.url}/dashboard/", timeout=30_000)
            wait_for(lambda: page_numbers(page), timeout=20, until=lambda numbers: numbers.get("total") == 0)
            place_orders(server, 40)  # with the page already showing: it sees them arrive, move and drain
            first = wait_for(lambda: page_numbers(page), timeout=20, until=lambda numbers: numbers.get("total") == 40)
            later = wait_for(
                lambda: page_numbers(page), timeout=30, until=lambda numbers: numbers["COMPLETED"] > first["COMPLETED"]
            )
            page.screenshot(path=str(ARTIFACTS / "dashboard-in-flight.png"), full_page=True)
            worker = page.evaluate(
                """() => ({concurrency: document.querySelector('[data-metric="process.concurrency"]').textContent,
                          in_flight: document.querySelector('[data-metric="process.in_flight"]').textContent,
                          pid: document.getElementById('process-pid').textContent})"""
            )

            wait_for(lambda: database.statuses() == {"COMPLETED": 40}, timeout=90)
            shown = wait_for(lambda: page_numbers(page), timeout=30, until=lambda numbers: numbers["COMPLETED"] == 40)
            page.screenshot(path=str(ARTIFACTS / "dashboard-drained.png"), full_page=True)
        finally:
            browser.close()

    assert first["total"] == later["total"] == 40
    # The answering process's worker: its in-flight orders against its concurrency.
    assert worker["concurrency"] == "2"
    assert worker["in_flight"] in {"0", "1", "2"}
    assert worker["pid"].isdigit()
    api = request(server.url, "GET", "/api/metrics/")[1]
    assert shown == {"total": api["total_orders"], **api["orders_by_status"]}
    assert (ARTIFACTS / "dashboard-drained.png").stat().st_size > 10_000
