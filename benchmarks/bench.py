"""make bench: latency of the read endpoints at 1,000 and at 1,000,000 orders, as ratios measured in one run.

Each run writes benchmarks/results/<time>.json and prints a table. These are benchmarks, not tests: the machines are
shared and noisy, so every figure is a ratio of two measurements taken side by side, on the same server configuration.
"""

import argparse
import base64
import http.client
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STATUSES = ["COMPLETED"] * 90 + ["FAILED"] * 4 + ["CANCELLED"] * 3 + ["PENDING"] * 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000, help="orders in the small table")
    parser.add_argument("--large", type=int, default=1_000_000, help="orders in the large table")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="order-bench-") as workdir:
        rows = {size: measure_scale(Path(workdir), size, args.requests) for size in (args.small, args.large)}
    report = {
        "machine": machine(),
        "command": "make bench",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale_report(rows, args.small, args.large),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwritten to {path.relative_to(ROOT)}")


def measure_scale(workdir: Path, size: int, requests: int) -> dict[str, dict]:
    """Bulk-load `size` orders, then time each read endpoint against a production-configured server."""
    database = workdir / f"orders-{size}.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
        "ORDER_WORKER_AUTOSTART": "0",  # measure the reads alone; nothing processes the PENDING orders
        "LOG_LEVEL": "WARNING",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    print(f"loading {size:,} orders...", flush=True)
    ids, oldest = bulk_load(database, size)
    subprocess.run([*manage, "metrics_rebuild"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    # A cursor as DRF writes it, positioned 90% of the way down the table.
    position = f"{oldest + timedelta(milliseconds=size // 10):%Y-%m-%d %H:%M:%S.%f}+00:00"
    deep_cursor = quote(base64.b64encode(urlencode({"p": position}).encode()).decode())
    endpoints = {
        "GET /api/metrics/": lambda: "/api/metrics/",
        "GET /api/orders/ (first page)": lambda: "/api/orders/",
        "GET /api/orders/ (deep page)": lambda: f"/api/orders/?cursor={deep_cursor}",
        "GET /api/orders/{id}/status/": lambda: f"/api/orders/{random.choice(ids)}/status/",
    }
    with Server(env) as server:
        return {name: time_endpoint(server.port, path, requests) for name, path in endpoints.items()}


def bulk_load(database: Path, size: int) -> tuple[list[str], datetime]:
    """Insert orders straight into SQLite, 1 ms apart, ending now; returns a sample of ids and the oldest time."""
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(milliseconds=size)
    sample: list[str] = []

    def rows():
        for n in range(size):
            order_id = uuid.uuid4()
            if n % max(1, size // 1000) == 0:
                sample.append(str(order_id))
            created = start + timedelta(milliseconds=n)
            status = STATUSES[n % len(STATUSES)]
            done = status in ("COMPLETED", "FAILED")
            started = created + timedelta(seconds=1) if done else None
            completed = created + timedelta(seconds=3) if done else None
            yield (
                order_id.hex, f"user{n % 5000}", "[1, 2, 3]", "90.99", status, int(done), int(status == "FAILED"),
                "", fmt(created), fmt(created), fmt(started), fmt(completed), fmt(completed or created),
            )  # fmt: skip

    with sqlite3.connect(database) as db:
        db.executemany(
            "INSERT INTO orders_order (order_id, user_id, item_ids, total_amount, status, attempts, times_failed,"
            " failure_reason, created_at, available_at, started_at, completed_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    return sample, start.replace(tzinfo=UTC)


def fmt(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if moment else None


def time_endpoint(port: int, path, requests: int) -> dict:
    """Sequential requests on one keep-alive connection: median and p95 latency in milliseconds."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    try:
        for n in range(requests + 20):
            started = time.perf_counter()
            connection.request("GET", path())
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path()} answered {response.status}")
            if n >= 20:  # the first requests warm up caches and connections
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    latencies.sort()
    return {
        "median_ms": round(statistics.median(latencies), 3),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)], 3),
    }


def scale_report(rows: dict[int, dict], small: int, large: int) -> list[dict]:
    report = []
    for name in rows[small]:
        ratio = rows[large][name]["median_ms"] / rows[small][name]["median_ms"]
        report.append(
            {
                "endpoint": name,
                f"median_ms_at_{small}": rows[small][name]["median_ms"],
                f"median_ms_at_{large}": rows[large][name]["median_ms"],
                "ratio": round(ratio, 2),
                "goal": "<= 2.0",
                "met": ratio <= 2.0,
            }
        )
    return report


def print_table(report: dict) -> None:
    machine = report["machine"]
    print(f"\n{machine['cpu']} · {machine['cores']} cores · Python {machine['python']}")
    rows = report["scale"]
    headers = list(rows[0])
    widths = [max(len(str(header)), *(len(str(row[header])) for row in rows)) for header in headers]
    print("  ".join(str(header).ljust(width) for header, width in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[header]).ljust(width) for header, width in zip(headers, widths, strict=True)))


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


class Server:
    """gunicorn with make run's configuration on a free port, stopped by its PID."""

    def __init__(self, env: dict):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.env = env

    def __enter__(self):
        command = [sys.executable, "-m", "gunicorn", "--config", "order_system/gunicorn.conf.py"]
        self.process = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{self.port}"], cwd=ROOT, env=self.env, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc_info):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


if __name__ == "__main__":
    main()
