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
import re
import shutil
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
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STATUSES = ["COMPLETED"] * 90 + ["FAILED"] * 4 + ["CANCELLED"] * 3 + ["PENDING"] * 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000, help="orders in the small table (scale)")
    parser.add_argument("--large", type=int, default=1_000_000, help="orders in the large table (scale)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint (scale)")
    parser.add_argument("--seconds", type=int, default=4, help="length of each throughput run (intake)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per endpoint, taking turns (intake)")
    parser.add_argument("--sections", default="intake,drain,scale,memory", help="which to run, comma-separated")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "ab") if not shutil.which(tool)]
    if missing:
        sys.exit(f"make bench needs {' and '.join(missing)}: apt-get install wrk apache2-utils")

    sections = args.sections.split(",")
    report = {"machine": machine(), "command": "make bench", "started": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="order-bench-") as workdir:
        workdir = Path(workdir)
        if "intake" in sections:
            report["intake"] = measure_intake(workdir, args.seconds, args.rounds)
        if "drain" in sections:
            report["drain"] = measure_drain(workdir)
        if "scale" in sections:
            rows = {size: measure_scale(workdir, size, args.requests) for size in (args.small, args.large)}
            report["scale"] = scale_report(rows, args.small, args.large)
        if "memory" in sections:
            report["memory"] = measure_memory(workdir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"\nwritten to {path.relative_to(ROOT)}")


def server_env(database: Path, **extra: str) -> dict:
    """The production configuration (DJANGO_DEBUG=0), plus the benchmark-only do-nothing endpoint."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def fresh_database(workdir: Path, name: str, **extra: str) -> tuple[Path, dict]:
    """A migrated SQLite file, and the server environment that uses it."""
    database = workdir / f"{name}.sqlite3"
    env = server_env(database, **extra)
    migrate(env)
    return database, env


def order_body(workdir: Path) -> Path:
    """The README's example order, as a file for wrk and ab."""
    body = workdir / "order.json"
    body.write_text(json.dumps({"user_id": "user44", "item_ids": [1, 2, 3], "total_amount": 90.99}))
    return body


def measure_intake(workdir: Path, seconds: int, rounds: int) -> list[dict]:
    """POST /api/orders/ against a do-nothing DRF view on the same server, and a raw SQLite insert loop.

    The two endpoints take turns, `rounds` times each, and every figure is the median: a neighbour's burst on a
    shared machine then lands in one round of one endpoint instead of in the whole of one side of the ratio.
    """
    print("intake...", flush=True)
    _, env = fresh_database(workdir, "intake")
    body = order_body(workdir)
    rows = []
    with Server(env) as server:
        runs: dict[tuple[int, str], list[dict]] = defaultdict(list)
        for connections in (64, 1000):
            for _ in range(rounds):
                for name, path in (("framework", "/bench/noop/"), ("intake", "/api/orders/")):
                    run = partial(wrk, server.port, path, connections, seconds, body)
                    runs[connections, name].append(server.measure(run))
        burst = ab_seconds(server.port, "/api/orders/", 1000, 1000, body)
    storage = sqlite_insert_rate(workdir / "raw.sqlite3", seconds=3)
    for connections in (64, 1000):
        intake, framework = runs[connections, "intake"], runs[connections, "framework"]
        rows.append(row(f"intake req/s at {connections} connections", median(intake, "rps")))
        rows.append(row(f"  framework ceiling (do-nothing DRF view) at {connections}", median(framework, "rps")))
        ratios = [i["rps"] / f["rps"] for i, f in zip(intake, framework, strict=True)]
        rows.append(row(f"  intake / framework at {connections}", statistics.median(ratios), ">= 0.5"))
        rows.append(row(f"  errors at {connections} connections", sum(run["errors"] for run in intake), "== 0"))
        # What the ratio would be with the machine to itself: server CPU time per request, framework over intake.
        cost = median(framework, "cpu_us") / median(intake, "cpu_us")
        rows.append(row(f"  server CPU per request, framework / intake at {connections}", cost))
    rows.append(row("storage ceiling: raw SQLite inserts/s, one process", storage))
    rows.append(row("  intake at 64 / storage ceiling", median(runs[64, "intake"], "rps") / storage))
    p50, p99 = median(runs[64, "intake"], "p50_ms"), median(runs[64, "intake"], "p99_ms")
    rows.append(row("intake p50 / p99 ms at 64", f"{p50:.1f} / {p99:.1f}"))
    rows.append(row("  p99 / p50 at 64", p99 / p50, "<= 3"))
    rows.append(row("1,000-order burst (ab -c 1000) answered in s", burst, "<= 2"))
    return rows


def median(runs: list[dict], key: str) -> float:
    """The median of one figure over several runs."""
    return statistics.median(run[key] for run in runs)


def wrk(port: int, path: str, connections: int, seconds: int, body: Path) -> dict:
    """Keep-alive POSTs for `seconds` from wrk: requests/s, p50 and p99 in ms, and every kind of error."""
    script = body.with_suffix(".lua")
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body.read_text()}]]\n'
    )
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency", "-s", str(script)]
    output = subprocess.run([*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    errors += int(match.group(1)) if (match := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0
    return {
        "seconds": seconds,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _wrk_ms(output, "50%"),
        "p99_ms": _wrk_ms(output, "99%"),
        "errors": errors,
    }


def _wrk_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 1)


def ab_seconds(port: int, path: str, requests: int, concurrency: int, body: Path) -> float:
    """Wall time for `requests` POSTs, `concurrency` at once, new connection each (like the README's curl loop)."""
    command = ["ab", "-q", "-r", "-n", str(requests), "-c", str(concurrency), "-p", str(body), "-T", "application/json"]
    output = subprocess.run([*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", output).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", output)
    if failed or non_2xx:
        return float("inf")  # a burst with errors was not answered
    return float(re.search(r"Time taken for tests:\s+([\d.]+)", output).group(1))


def sqlite_insert_rate(database: Path, seconds: float) -> float:
    """Committed single-row inserts/s with WAL and synchronous=NORMAL, as the app runs SQLite: the storage ceiling."""
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT, item_ids TEXT, total REAL, created TEXT)")
    inserted, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, "user44", "[1, 2, 3]", 90.99, datetime.now(UTC).isoformat()),
        )
        db.execute("COMMIT")
        inserted += 1
    db.close()
    return inserted / (time.perf_counter() - started)


def measure_drain(workdir: Path, orders: int = 10_000) -> list[dict]:
    """Orders/s the worker completes with no simulated work, against the raw UPDATEs it has to make."""
    print("drain...", flush=True)
    database, env = fresh_database(workdir, "drain", ORDER_PROCESSING_SECONDS="0")
    bulk_load(database, orders, status="PENDING")
    subprocess.run([sys.executable, "manage.py", "metrics_rebuild"], cwd=ROOT, env=env, check=True, capture_output=True)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "process_orders"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with sqlite3.connect(database, timeout=30) as db:
            done = "SELECT COUNT(*) FROM orders_order WHERE status = 'COMPLETED'"
            # The clock starts at the first completion, so the process's start-up time is not counted as drain.
            while not (done_at_start := db.execute(done).fetchone()[0]):
                time.sleep(0.01)
            started = time.perf_counter()
            while db.execute(done).fetchone()[0] < orders:
                time.sleep(0.01)
        worker_rate = (orders - done_at_start) / (time.perf_counter() - started)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    raw_rate = raw_update_rate(database, orders)
    return [
        row("worker: orders completed/s (ORDER_PROCESSING_SECONDS=0)", worker_rate),
        row("raw SQLite: the same writes per order, in a loop", raw_rate),
        row("  worker overhead: raw / worker", raw_rate / worker_rate, "<= 3"),
    ]


def raw_update_rate(database: Path, orders: int) -> float:
    """Orders/s for the bare writes of processing: claim and complete, each an order UPDATE and a counter UPDATE."""
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    ids = [order_id for (order_id,) in db.execute("SELECT order_id FROM orders_order")]
    started = time.perf_counter()
    for order_id in ids:
        for to in ("PROCESSING", "COMPLETED"):
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE orders_order SET status = ?, updated_at = ? WHERE order_id = ?",
                (to, fmt(datetime.now()), order_id),
            )
            db.execute("UPDATE metrics_counter SET value = value + 1 WHERE name = ? AND shard = 0", (f"status.{to}",))
            db.execute("COMMIT")
    db.close()
    return orders / (time.perf_counter() - started)


def measure_memory(workdir: Path, burst: int = 10_000) -> list[dict]:
    """Server RSS (all gunicorn processes) after one and after a second 10,000-order burst."""
    print("memory...", flush=True)
    _, env = fresh_database(workdir, "memory", ORDER_PROCESSING_SECONDS="0")
    body = order_body(workdir)
    with Server(env) as server:
        ab_seconds(server.port, "/api/orders/", burst, 100, body)
        first = server.rss_mb()
        ab_seconds(server.port, "/api/orders/", burst, 100, body)
        second = server.rss_mb()
    return [
        row("server RSS MB after the first 10,000-order burst", first),
        row("server RSS MB after the second", second),
        row("  growth from the second burst", (second - first) / first, "< 0.10"),
    ]


def row(figure: str, value, goal: str = "") -> dict:
    """One line of the report; `met` says whether a goal was reached."""
    if isinstance(value, float):
        value = round(value, 3)
    met = None
    if goal:
        operator, bound = goal.split()
        met = {
            ">=": value >= float(bound),
            "<=": value <= float(bound),
            "<": value < float(bound),
            "==": value == float(bound),
        }[operator]
    return {"figure": figure, "value": value, "goal": goal, "met": met}


def measure_scale(workdir: Path, size: int, requests: int) -> dict[str, dict]:
    """Bulk-load `size` orders, then time each read endpoint against a production-configured server."""
    # The reads alone: nothing processes the PENDING orders.
    database, env = fresh_database(workdir, f"orders-{size}", ORDER_WORKER_AUTOSTART="0")
    manage = [sys.executable, "manage.py"]
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


def bulk_load(database: Path, size: int, status: str | None = None) -> tuple[list[str], datetime]:
    """Insert orders straight into SQLite, 1 ms apart, ending now; returns a sample of ids and the oldest time."""
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(milliseconds=size)
    sample: list[str] = []

    def rows():
        for n in range(size):
            order_id = uuid.uuid4()
            if n % max(1, size // 1000) == 0:
                sample.append(str(order_id))
            created = start + timedelta(milliseconds=n)
            order_status = status or STATUSES[n % len(STATUSES)]
            done = order_status in ("COMPLETED", "FAILED")
            started = created + timedelta(seconds=1) if done else None
            completed = created + timedelta(seconds=3) if done else None
            failed = int(order_status == "FAILED")
            yield (
                order_id.hex, f"user{n % 5000}", "[1, 2, 3]", "90.99", order_status, int(done), failed,
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
        at_small, at_large = rows[small][name]["median_ms"], rows[large][name]["median_ms"]
        report.append(row(f"{name}: median ms at {small:,} / {large:,} orders", f"{at_small} / {at_large}"))
        report.append(row("  ratio", at_large / at_small, "<= 2"))
    return report


def print_report(report: dict) -> None:
    machine = report["machine"]
    print(f"\n{machine['cpu']} · {machine['cores']} cores · Python {machine['python']}")
    for section in ("intake", "drain", "scale", "memory"):
        if section not in report:
            continue
        print(f"\n{section}")
        for line in report[section]:
            verdict = {True: "met", False: "MISSED", None: ""}[line["met"]]
            print(f"  {line['figure']:<62} {line['value']!s:>18}  {line['goal']:<7} {verdict}")


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
        self.process.wait(60)

    def measure(self, run: Callable[[], dict]) -> dict:
        """run()'s figures, plus the CPU time the server's processes spent per request meanwhile, in microseconds."""
        before = self.cpu_seconds()
        figures = run()
        requests = figures["rps"] * figures["seconds"]
        return {**figures, "cpu_us": round((self.cpu_seconds() - before) / max(requests, 1) * 1e6)}

    def cpu_seconds(self) -> float:
        """User and system time of the master and its workers so far."""
        ticks = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [self.process.pid, *map(int, children)]

    def rss_mb(self) -> float:
        """Resident memory of the master and its worker processes together."""
        kilobytes = 0
        for pid in self.pids():
            status = Path(f"/proc/{pid}/status").read_text()
            kilobytes += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        return kilobytes / 1024


if __name__ == "__main__":
    main()
