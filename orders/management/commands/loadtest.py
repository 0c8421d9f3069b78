"""python manage.py loadtest: fire orders at a running server, then follow each one to a final status."""

import asyncio
import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import httpx
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass
class Report:
    """What a load test saw; `ok` is what the exit status reports."""

    orders: int
    concurrency: int
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # status code -> count
    transport_errors: dict[str, int] = field(default_factory=dict)  # exception type -> count
    seconds: float = 0.0
    requests_per_second: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    final_statuses: dict[str, int] = field(default_factory=dict)
    drain_seconds: float | None = None
    completed_per_second: float | None = None
    lost: list[str] = field(default_factory=list)  # accepted, then 404
    stuck: list[str] = field(default_factory=list)  # accepted, never final within --wait-timeout

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.transport_errors or self.lost or self.stuck) and self.accepted == self.orders


class Command(BaseCommand):
    """Turns the README's curl loop into numbers: errors, latency, throughput, and no order lost."""

    help = "Submit orders concurrently to a running server and report errors, latency and (with --wait) the drain."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
        parser.add_argument("--orders", type=int, default=1000, help="orders to submit (default %(default)s)")
        parser.add_argument("--concurrency", type=int, default=1000, help="connections at once (default %(default)s)")
        parser.add_argument("--wait", action="store_true", help="follow every accepted order to a final status")
        parser.add_argument("--wait-timeout", type=float, default=900, help="give up waiting after this many seconds")
        parser.add_argument("--json", metavar="FILE", help="also write the report to FILE as JSON")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, **options):
        if options["orders"] < 1 or options["concurrency"] < 1:
            raise CommandError("--orders and --concurrency must be at least 1")
        report = asyncio.run(run(options))
        self.stdout.write(render(report))
        if options["json"]:
            with open(options["json"], "w") as file:
                json.dump({**asdict(report), "ok": report.ok}, file, indent=2)
        if not report.ok:
            raise CommandError("load test failed: errors, lost or stuck orders (see above)")


async def run(options) -> Report:
    report = Report(orders=options["orders"], concurrency=options["concurrency"])
    limits = httpx.Limits(max_connections=report.concurrency, max_keepalive_connections=report.concurrency)
    async with httpx.AsyncClient(base_url=options["url"], limits=limits, timeout=120) as client:
        started = time.perf_counter()
        accepted = await submit_all(client, report, quiet=options["no_progress"])
        report.seconds = round(time.perf_counter() - started, 3)
        report.requests_per_second = round(report.orders / report.seconds, 1)
        if options["wait"] and accepted:
            await follow(client, report, accepted, started, options["wait_timeout"], quiet=options["no_progress"])
    return report


async def submit_all(client: httpx.AsyncClient, report: Report, *, quiet: bool) -> list[str]:
    """POST every order at once (the client's connection limit is the concurrency); returns the accepted ids."""
    latencies, accepted = [], []
    rejected, errors = Counter(), Counter()
    progress = tqdm(total=report.orders, desc="submitting", unit="order", disable=quiet)

    async def submit(number: int) -> None:
        body = {"user_id": f"loadtest{number}", "item_ids": [1, 2, 3], "total_amount": "90.99"}
        started = time.perf_counter()
        try:
            response = await client.post("/api/orders/", json=body)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
        else:
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code == 201:
                accepted.append(response.json()["order_id"])
            else:
                rejected[str(response.status_code)] += 1
        progress.update()

    await asyncio.gather(*(submit(number) for number in range(report.orders)))
    progress.close()
    report.accepted, report.rejected, report.transport_errors = len(accepted), dict(rejected), dict(errors)
    report.latency_ms = percentiles(latencies)
    return accepted


async def follow(client, report: Report, order_ids: list[str], started: float, timeout: float, *, quiet: bool):
    """Poll each unfinished order's status until every one is final, lost (404) or the timeout passes."""
    waiting, finals = set(order_ids), Counter()
    progress = tqdm(total=len(order_ids), desc="processing", unit="order", disable=quiet)
    deadline = time.perf_counter() + timeout
    limit = asyncio.Semaphore(50)

    async def check(order_id: str) -> None:
        async with limit:
            try:
                response = await client.get(f"/api/orders/{order_id}/status/")
            except httpx.HTTPError:
                return  # try again next round
        if response.status_code == 404:
            report.lost.append(order_id)
        elif response.status_code == 200 and (status := response.json()["status"]) in FINAL:
            finals[status] += 1
        else:
            return
        waiting.discard(order_id)
        progress.update()

    while waiting and time.perf_counter() < deadline:
        await asyncio.gather(*(check(order_id) for order_id in list(waiting)))
        if waiting:
            await asyncio.sleep(0.5)
    progress.close()
    report.stuck = sorted(waiting)
    report.final_statuses = dict(finals)
    if not waiting:
        report.drain_seconds = round(time.perf_counter() - started, 3)
        report.completed_per_second = round(finals["COMPLETED"] / report.drain_seconds, 2)


def percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 1),
    }


def render(report: Report) -> str:
    lines = [
        f"orders        {report.orders} at concurrency {report.concurrency}",
        f"accepted      {report.accepted}",
        f"rejected      {report.rejected or 0}",
        f"errors        {report.transport_errors or 0}",
        f"submitted in  {report.seconds} s ({report.requests_per_second} requests/s)",
        "latency ms    " + "  ".join(f"{name} {value}" for name, value in report.latency_ms.items()),
    ]
    if report.final_statuses or report.lost or report.stuck:
        lines += [
            f"final         {report.final_statuses}",
            f"drained in    {report.drain_seconds} s ({report.completed_per_second} completed/s)",
            f"lost          {len(report.lost)} {report.lost[:10]}",
            f"stuck         {len(report.stuck)} {report.stuck[:10]}",
        ]
    lines.append("OK" if report.ok else "FAILED")
    return "\n".join(lines)
