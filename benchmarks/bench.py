"""make bench: intake and its shortcuts, the pipeline, drains, webhooks, memory and reads at scale, side by side.

Each run writes benchmarks/results/<time>.json and prints a table. These are benchmarks, not tests: the machines are
shared and noisy, so every figure is a ratio of two measurements taken side by side, on the same server configuration.
"""

import argparse
import contextlib
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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STATUSES = ["COMPLETED"] * 90 + ["FAILED"] * 4 + ["CANCELLED"] * 3 + ["PENDING"] * 3
# Celery mode: the pool and the connection pool docs/operations.md recommends for I/O-bound processors ("Scaling out").
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
CELERY_BROKER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/12")
CELERY_WORKERS = 2
CELERY_ENV = {
    "ORDER_QUEUE_BACKEND": "celery",
    "CELERY_BROKER_URL": CELERY_BROKER,
    "CELERY_POOL": "threads",
    "CELERY_CONCURRENCY": "500",
    "DATABASE_POOL_SIZE": "20",
}
# make run's server; the one it replaced, as it was configured; and granian's own WSGI interface, which make run does
# not use: it calls Django before the body has arrived, so slow bodies hold its threads.
GRANIAN = [sys.executable, "-m", "order_system.server", "--bind", "127.0.0.1:{port}"]
OTHER_SERVERS = {
    "gunicorn": [
        *[sys.executable, "-m", "gunicorn", "order_system.wsgi", "--worker-class", "gthread", "--workers", "2"],
        *["--threads", "16", "--backlog", "2048", "--reuse-port", "--no-control-socket", "--bind", "127.0.0.1:{port}"],
    ],
    "granian-wsgi": [
        *[sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "2", "--blocking-threads", "16"],
        *["--backlog", "2048", "--http1-header-read-timeout", "10000", "--port", "{port}"],
        "order_system.wsgi:application",
    ],
}
# The server's processes run no order worker (with the variable unset, each serving process runs one).
WORKER_OFF = {"ORDER_WORKER_AUTOSTART": "0"}
SECTIONS = [
    "servers",
    "intake",
    "idioms",
    "auth",
    "pipeline",
    "drain",
    "burst",
    "in_flight",
    "webhooks",
    "celery",
    "scale",
    "memory",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000, help="orders in the small table (scale)")
    parser.add_argument("--large", type=int, default=1_000_000, help="orders in the large table (scale)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint (scale)")
    parser.add_argument("--seconds", type=int, default=4, help="length of each throughput run (intake)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, taking turns (intake, webhooks)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="which to run, comma-separated")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "ab") if not shutil.which(tool)]
    if missing:
        sys.exit(f"make bench needs {' and '.join(missing)}: apt-get install wrk apache2-utils")

    sections = args.sections.split(",")
    report = {"machine": machine(), "command": "make bench", "started": datetime.now(UTC).isoformat(timespec="seconds")}
    with tempfile.TemporaryDirectory(prefix="order-bench-") as workdir:
        workdir = Path(workdir)
        if "servers" in sections:
            report["servers"] = measure_servers(workdir, args.seconds, args.rounds)
        if "intake" in sections:
            report["intake"] = measure_intake(workdir, args.seconds, args.rounds)
        if "idioms" in sections:
            report["idioms"] = measure_idioms(workdir)
        if "auth" in sections:
            report["auth"] = measure_auth(workdir)
        if "pipeline" in sections:
            report["pipeline"] = measure_pipeline(workdir, args.rounds)
        if "drain" in sections:
            report["drain"] = measure_drain(workdir)
        if "burst" in sections:
            report["burst"] = measure_bursts(workdir)
        if "in_flight" in sections:
            report["in_flight"] = measure_in_flight_memory(workdir)
        if "webhooks" in sections:
            report["webhooks"] = measure_webhooks(workdir, args.rounds)
        if "celery" in sections:
            report["celery"] = measure_celery_burst(workdir)
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
    """The production configuration (DJANGO_PRODUCTION=1, `make serve`), plus the benchmark-only do-nothing endpoint."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_PRODUCTION": "1",
        "DJANGO_SECRET_KEY": "benchmark-only-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "API_OPEN": "1",  # the auth section measures what closing it costs
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


def measure_servers(workdir: Path, seconds: int, rounds: int) -> list[dict]:
    """make run's granian against gunicorn gthread, which it replaced, and granian's WSGI interface: intake, and the
    slowest answer under a slow-client attack.

    All run at once on their own databases, with no order worker, and take turns under wrk -c64.
    """
    print("servers...", flush=True)
    body = order_body(workdir)
    servers = {}
    for name, command in {"granian": GRANIAN, **OTHER_SERVERS}.items():
        _, env = fresh_database(workdir, f"servers-{name}", **WORKER_OFF)
        servers[name] = Server(env, command)
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    attack = {}
    with contextlib.ExitStack() as running:
        for server in servers.values():
            running.enter_context(server)
        for _ in range(rounds):
            for name, server in servers.items():
                runs[name, "healthz"].append(wrk(server.port, "/healthz", 64, seconds, None))
                runs[name, "create"].append(wrk(server.port, "/api/orders/", 64, seconds, body))
        for name, server in servers.items():
            attack[name] = slowest_answer_under_attack(server.port, body.read_bytes())
    rows = []
    for endpoint, label in (("healthz", "GET /healthz"), ("create", "POST /api/orders/")):
        for name in servers:
            rows.append(row(f"{name}: {label} req/s (wrk -c64)", median(runs[name, endpoint], "rps")))
        for name in OTHER_SERVERS:
            ratio = median(runs["granian", endpoint], "rps") / median(runs[name, endpoint], "rps")
            rows.append(row(f"  granian / {name}, {label}", ratio, ">= 1" if name == "gunicorn" else ""))
    for name in servers:
        rows.append(row(f"{name}: slowest answer, s, under 80 slow clients", attack[name], "<= 1"))
    return rows


def slowest_answer_under_attack(port: int, body: bytes, clients: int = 80, timeout: float = 15) -> float:
    """80 connections held open, half after one byte, half with 10 of 100 body bytes; meanwhile, 5 GETs /healthz and
    5 POSTs, one at a time: the slowest in seconds (the timeout when one got no answer)."""
    partial_body = (
        b"POST /api/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n0123456789"
    )
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
    slowest = 0.0
    try:
        for number, sock in enumerate(held):
            sock.sendall(b"G" if number % 2 else partial_body)
        time.sleep(1)
        for method, path, payload in [("GET", "/healthz", None), ("POST", "/api/orders/", body)] * 5:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            started = time.perf_counter()
            try:
                connection.request(method, path, payload, {"Content-Type": "application/json"})
                connection.getresponse().read()
                slowest = max(slowest, time.perf_counter() - started)
            except TimeoutError:
                return timeout
            finally:
                connection.close()
    finally:
        for sock in held:
            sock.close()
    return slowest


def measure_intake(workdir: Path, seconds: int, rounds: int) -> list[dict]:
    """POST /api/orders/ against a do-nothing DRF view on the same server, and a raw SQLite insert loop.

    The two endpoints take turns, `rounds` times each, and every figure is the median: a neighbour's burst on a
    shared machine then lands in one round of one endpoint instead of in the whole of one side of the ratio.
    """
    print("intake...", flush=True)
    _, env = fresh_database(workdir, "intake", **WORKER_OFF)  # intake alone: the pipeline is measured below
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
        rows.append(row(f"  intake / framework at {connections}", statistics.median(ratios), ">= 0.45"))
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


# The create view's shortcuts (benchmarks/idioms.py). Each is kept while it saves at least this share of a create, in
# %, over the Django or DRF idiom it stands in for, in a run whose own noise is below it (docs/performance.md).
KEEP_IF_SAVED = 2
SHORTCUTS = {
    "location": ("hand-built Location", f">= {KEEP_IF_SAVED}"),
    "input_serializer": ("shared input serializer", f">= {KEEP_IF_SAVED}"),
    "output_serializer": ("shared output serializer", f">= {KEEP_IF_SAVED}"),
    "utc_datetime": ("UTCDateTimeField", ""),  # kept for the API's promise of UTC, whatever it saves
}


def measure_idioms(workdir: Path, requests: int = 1_000) -> list[dict]:
    """Each shortcut of the create view against its idiom, the variants taking turns request by request.

    In a process of its own through Django's handler, with no server: under wrk, two runs of the same code differ by
    more than the few % to resolve (docs/performance.md).
    """
    print("idioms...", flush=True)
    _, env = fresh_database(workdir, "idioms", **WORKER_OFF)
    command = [sys.executable, "-m", "benchmarks.idioms", str(order_body(workdir)), "--requests", str(requests)]
    cpu_us = json.loads(subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True).stdout)
    create = cpu_us["shipped"]

    def share_of_a_create(variant: str) -> float:
        return round((cpu_us[variant] - create) / create * 100, 1)

    rows = [
        row(f"CPU µs per create through Django's handler (median of {requests:,})", round(create)),
        row(
            "  noise: the same code measured twice, difference in %",
            abs(share_of_a_create("shipped_again")),
            f"< {KEEP_IF_SAVED}",
        ),
    ]
    for shortcut, (label, goal) in SHORTCUTS.items():
        rows.append(row(f"{label}: µs per create, shortcut / idiom", f"{create:.0f} / {cpu_us[shortcut]:.0f}"))
        rows.append(row("  saved, % of a create", share_of_a_create(shortcut), goal))
    return rows


AUTH_VARIANTS = {
    "service_token": "a service token (API_TOKENS)",
    "jwt_rs256": "a provider's RS256 JWT (JWKS keys cached)",
    "jwt_es256": "a provider's ES256 JWT (JWKS keys cached)",
    "jwt_hs256": "the service's own HS256 JWT (its user row read)",
}


def measure_auth(workdir: Path, requests: int = 1_000) -> list[dict]:
    """What authenticating a create costs in CPU, by scheme, against the open API (benchmarks/auth.py).

    Twice, in a process of its own each: with a provider's tokens, and with the service signing its own. Through
    Django's handler, with no server, for the same reason as the idioms section.
    """
    print("auth...", flush=True)
    cpu_us = {}
    for mode, flags in {"provider": [], "own": ["--own-tokens"]}.items():
        closed = {"API_OPEN": "", "API_TOKENS": "bench-token", "API_AUTH": "jwt"}
        _, env = fresh_database(workdir, f"auth-{mode}", **WORKER_OFF, **closed)
        command = [sys.executable, "-m", "benchmarks.auth", str(order_body(workdir)), "--requests", str(requests)]
        run = subprocess.run([*command, *flags], cwd=ROOT, env=env, stdout=subprocess.PIPE, check=True)
        cpu_us[mode] = json.loads(run.stdout)
    rows = []
    for mode, figures in cpu_us.items():
        create = figures["open"]
        rows.append(row(f"{mode}: CPU µs per create, open API (median of {requests:,})", round(create)))
        rows.append(row("  noise: the open API measured twice, µs apart", round(abs(figures["open_again"] - create))))
        for variant, label in AUTH_VARIANTS.items():
            if variant in figures:
                cost = figures[variant] - create
                rows.append(row(f"  {label}: µs more", f"{cost:.0f} ({cost / create * 100:.1f}%)"))
    return rows


def median(runs: list[dict], key: str) -> float:
    """The median of one figure over several runs."""
    return statistics.median(run[key] for run in runs)


def wrk(port: int, path: str, connections: int, seconds: int, body: Path | None) -> dict:
    """Keep-alive POSTs (GETs without a body) for `seconds` from wrk: requests/s, p50 and p99 in ms, and errors."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency"]
    if body is not None:
        script = body.with_suffix(".lua")
        headers = 'wrk.headers["Content-Type"] = "application/json"'
        script.write_text(f'wrk.method = "POST"\n{headers}\nwrk.body = [[{body.read_text()}]]\n')
        command += ["-s", str(script)]
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


def measure_pipeline(workdir: Path, rounds: int, seconds: int = 10) -> list[dict]:
    """wrk -c64 POSTs for 10 s, zero-work orders: completed/s in steady state with the worker on, against intake alone.

    Intake alone (ORDER_WORKER_AUTOSTART=0) and the pipeline take turns; each figure is the median of its rounds. The
    steady state is the window from the 3rd second to the last but one, read from the database every half second.
    """
    print("pipeline...", flush=True)
    body = order_body(workdir)
    runs: dict[str, list[dict]] = defaultdict(list)
    for round_number in range(rounds):
        for name, worker in (("intake", WORKER_OFF), ("pipeline", {})):
            zero_work = {"ORDER_PROCESSING_SECONDS": "0", **worker}
            database, env = fresh_database(workdir, f"pipeline-{name}-{round_number}", **zero_work)
            with Server(env) as server:
                runs[name].append(pipeline_run(server, database, body, seconds))
    ratios = [p["completed"] / i["created"] for i, p in zip(runs["intake"], runs["pipeline"], strict=True)]
    return [
        row("intake alone: orders created/s (wrk -c64)", median(runs["intake"], "created")),
        row("pipeline: orders created/s", median(runs["pipeline"], "created")),
        row("pipeline: orders completed/s", median(runs["pipeline"], "completed")),
        row("  pipeline completed / intake alone", statistics.median(ratios), ">= 0.8"),
        row("  backlog growth: PENDING orders/s over the window", median(runs["pipeline"], "backlog_growth"), "<= 10"),
        # What the ratio would be with the machine to itself: server CPU time per order, intake alone over pipeline.
        row(
            "  server CPU per order, intake alone / pipeline",
            median(runs["intake"], "cpu_us") / median(runs["pipeline"], "cpu_us"),
        ),
    ]


def pipeline_run(server: "Server", database: Path, body: Path, seconds: int) -> dict:
    """One wrk run against the create endpoint, with the orders table sampled while it runs."""
    samples = []
    with ThreadPoolExecutor(max_workers=1) as pool, sqlite3.connect(database, timeout=30) as db:
        load = pool.submit(wrk, server.port, "/api/orders/", 64, seconds, body)
        started = time.monotonic()
        while not load.done():
            counts = dict(db.execute("SELECT status, COUNT(*) FROM orders_order GROUP BY status").fetchall())
            samples.append((time.monotonic() - started, server.cpu_seconds(), counts))
            time.sleep(0.5)
        load.result()
    window = [sample for sample in samples if 3 <= sample[0] <= seconds - 1]
    (start, cpu_start, first), (end, cpu_end, last) = window[0], window[-1]
    elapsed, created = end - start, sum(last.values()) - sum(first.values())
    return {
        "created": created / elapsed,
        "completed": (last.get("COMPLETED", 0) - first.get("COMPLETED", 0)) / elapsed,
        "backlog_growth": (last.get("PENDING", 0) - first.get("PENDING", 0)) / elapsed,
        "cpu_us": (cpu_end - cpu_start) / created * 1e6,
    }


def measure_bursts(workdir: Path) -> list[dict]:
    """make run's defaults (1-5 s of simulated work per order): from the last 201 of a burst to the last COMPLETED.

    The floor is the longest single order (completed_at - started_at): no drain can be shorter.
    """
    print("burst...", flush=True)
    body, rows = order_body(workdir), []
    for orders in (1_000, 10_000):
        database, env = fresh_database(workdir, f"burst-{orders}")
        with Server(env) as server:
            intake = ab_seconds(server.port, "/api/orders/", orders, 1000, body)
            last_201 = time.time()
            drain, floor = drain_after(partial(sqlite3.connect, database, timeout=30), orders, last_201)
        rows.append(row(f"{orders:,}-order burst (ab -c 1000): accepted in s", intake))
        rows.append(row("  last 201 -> last COMPLETED, s", drain))
        rows.append(row("  floor: the longest single order, s", floor))
        rows.append(row("  drain / floor", drain / floor, "<= 2" if orders == 1_000 else ""))
    return rows


def drain_after(connect: Callable, orders: int, last_201: float, timeout: float = 600) -> tuple[float, float]:
    """Wait until every order is COMPLETED; the seconds from last_201 to the last completion, and the longest order.

    connect() opens the database: sqlite3's or psycopg's connection, which answer the same execute() calls.
    """
    deadline = time.monotonic() + timeout
    with connect() as db:
        done = "SELECT COUNT(*) FROM orders_order WHERE status = 'COMPLETED'"
        while db.execute(done).fetchone()[0] < orders:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the burst did not drain in {timeout} s")
            time.sleep(0.1)
        rows = db.execute("SELECT started_at, completed_at FROM orders_order").fetchall()
    stamps = [(as_utc(started), as_utc(completed)) for started, completed in rows]
    last = max(completed for _, completed in stamps)
    return last.timestamp() - last_201, max((completed - started).total_seconds() for started, completed in stamps)


def as_utc(stamp: str | datetime) -> datetime:
    """A timestamp as the database gives it back: SQLite's are text, in UTC with no offset, as Django stores them."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC) if isinstance(stamp, str) else stamp


def measure_in_flight_memory(workdir: Path, orders: int = 10_000) -> list[dict]:
    """Server RSS with 10,000 orders in flight, against the same burst with none in flight (worker off)."""
    print("in flight...", flush=True)
    body, rss = order_body(workdir), {}
    slow = {"ORDER_PROCESSING_SECONDS": "600", "ORDER_PROCESSING_TIMEOUT_SECONDS": "900", "ORDER_CONCURRENCY": "10000"}
    for name, worker in (("none", WORKER_OFF), ("all", {})):
        database, env = fresh_database(workdir, f"in-flight-{name}", **worker, **slow)
        with Server(env) as server:
            ab_seconds(server.port, "/api/orders/", orders, 100, body)
            if name == "all":
                with sqlite3.connect(database, timeout=30) as db:
                    processing = "SELECT COUNT(*) FROM orders_order WHERE status = 'PROCESSING'"
                    while db.execute(processing).fetchone()[0] < orders:
                        time.sleep(0.1)
            rss[name] = server.rss_mb()
    return [
        row(f"server RSS MB after a {orders:,}-order burst, none in flight", rss["none"]),
        row(f"  the same with all {orders:,} in flight", rss["all"]),
        row("  MB per 1,000 orders in flight", (rss["all"] - rss["none"]) / (orders / 1000)),
    ]


# Deliveries may go over plain http to the receiver on 127.0.0.1.
WEBHOOKS_LOCAL = {"WEBHOOK_ALLOW_HTTP": "1", "WEBHOOK_ALLOW_PRIVATE_URLS": "1"}
EVENTS_PER_ORDER = 3  # order.created, order.processing, order.completed
# The webhooks section's runs: endpoints subscribed to every event, and the server's extra environment. "unsent"
# writes every delivery and sends none (benchmarks/outbox.py): what the outbox costs apart from the sending. "down"
# sends to a port where nothing listens, so every attempt is refused and retried after its backoff. The last two run
# no order worker, so the requests alone write the outbox during the burst: they measure intake, and nothing drains.
UNSENT = {"ORDER_QUEUE_BACKEND": "benchmarks.outbox.UnsentBackend"}
WEBHOOK_RUNS = {
    "none": (0, {}),
    "unsent": (2, UNSENT),
    "sent": (2, {}),
    "down": (2, {}),
    "none, requests only": (0, WORKER_OFF),
    "unsent, requests only": (2, {**UNSENT, **WORKER_OFF}),
}


def measure_webhooks(workdir: Path, rounds: int, orders: int = 1_000) -> list[dict]:
    """The burst section's 1,000-order burst with no webhook endpoint, and with two subscribed to every event.

    The runs take turns, `rounds` times each, each on a fresh database and server, and each figure is the median:
    intake and drain side by side, and for the two endpoints, when the deliveries reached a receiver that answers at
    once (benchmarks/webhooks.py, a process of its own) and how long each took from its event; with the receiver
    down, how many deliveries were still waiting when the last order completed, and how many attempts had failed.
    With no order worker, the burst's intake with no endpoint and with two unsent: what the requests' own outbox
    writes cost, apart from the worker's, which write theirs during the burst too.
    """
    print("webhooks...", flush=True)
    body = order_body(workdir)
    with WebhookReceiver() as receiver:
        ceiling = 5_000 / ab_seconds(receiver.port, "/ceiling", 5_000, 20, body)
    runs: dict[str, list[dict]] = defaultdict(list)
    for round_number in range(rounds):
        for name, (endpoints, extra) in WEBHOOK_RUNS.items():
            database, env = fresh_database(workdir, f"webhooks-{name}-{round_number}", **WEBHOOKS_LOCAL, **extra)
            with WebhookReceiver() as receiver, Server(env) as server:
                port = free_port() if name == "down" else receiver.port
                paths = [f"/{number}" for number in range(endpoints)]
                for path in paths:
                    subscribe(server.port, f"http://127.0.0.1:{port}{path}")
                cpu_before = server.cpu_seconds()
                intake = ab_seconds(server.port, "/api/orders/", orders, 1000, body)
                last_201 = time.time()
                if extra.get("ORDER_WORKER_AUTOSTART") == "0":
                    runs[name].append({"intake": orders / intake})
                    continue
                drain, floor = drain_after(partial(sqlite3.connect, database, timeout=30), orders, last_201)
                run = {"intake": orders / intake, "drain": drain, "floor": floor, "cpu_s": server.cpu_seconds()}
                run["cpu_s"] -= cpu_before
                with sqlite3.connect(database, timeout=30) as db:
                    run["written"] = db.execute("SELECT COUNT(*) FROM webhooks_delivery").fetchone()[0]
                    if name == "down":
                        run["pending"], run["failed"] = deliveries_waiting(db)
                if name == "sent":
                    run |= deliveries_arrived(receiver, paths, orders * EVENTS_PER_ORDER, last_201)
                    run["cpu_delivered_s"] = server.cpu_seconds() - cpu_before
                runs[name].append(run)
    none, unsent, sent, down = runs["none"], runs["unsent"], runs["sent"], runs["down"]
    deliveries = orders * EVENTS_PER_ORDER * WEBHOOK_RUNS["sent"][0]
    # What sending costs: the server's CPU until the last delivery, less the same burst's with the outbox unsent.
    cpu_per_delivery = (median(sent, "cpu_delivered_s") - median(unsent, "cpu_s")) / deliveries * 1000
    p50, p99 = median(sent, "p50_ms"), median(sent, "p99_ms")
    rows = []
    for name, label in (
        ("none", f"no endpoint: {orders:,}-order burst (ab -c 1000)"),
        ("unsent", "2 endpoints subscribed to *, deliveries unsent"),
        ("sent", "2 endpoints subscribed to *, deliveries sent"),
        ("down", "2 endpoints subscribed to *, receiver down"),
    ):
        drain, floor = median(runs[name], "drain"), median(runs[name], "floor")
        rows += [
            row(f"{label}: orders/s accepted", median(runs[name], "intake")),
            row("  last 201 -> last COMPLETED, s (floor: the longest order)", f"{drain:.2f} ({floor:.2f})"),
            row("  server CPU s, first request -> last COMPLETED", median(runs[name], "cpu_s")),
        ]
    return [
        *rows,
        row("intake, sent / no endpoint (median of rounds)", paired_ratio(sent, none, "intake"), ">= 0.9"),
        row("  unsent / no endpoint: the outbox's share", paired_ratio(unsent, none, "intake")),
        row("  receiver down / no endpoint", paired_ratio(down, none, "intake"), ">= 0.9"),
        row(
            "  unsent / no endpoint, no order worker: the requests' own share",
            paired_ratio(runs["unsent, requests only"], runs["none, requests only"], "intake"),
        ),
        row("drain, sent / no endpoint", paired_ratio(sent, none, "drain"), "<= 1.1"),
        row("  unsent / no endpoint", paired_ratio(unsent, none, "drain")),
        row("  receiver down / no endpoint", paired_ratio(down, none, "drain"), "<= 1.1"),
        row("deliveries written by the unsent run (none sent)", median(unsent, "written"), f"== {deliveries}"),
        row(f"{deliveries:,} deliveries: last arrived, s after the last 201", median(sent, "delivered")),
        row("  deliveries/s, first arrival -> last", median(sent, "rate")),
        row("  latency, event -> arrival, p50 / p99 ms", f"{p50:.0f} / {p99:.0f}"),
        row("  server CPU ms per delivery sent (sent less unsent)", cpu_per_delivery),
        row(
            f"  missing: webhook-ids short of {orders * EVENTS_PER_ORDER:,} per endpoint, all rounds",
            sum(run["missing"] for run in sent),
            "== 0",
        ),
        row("  sent more than once, all rounds", sum(run["repeated"] for run in sent)),
        row("receiver alone: requests/s (ab -c 20, a connection each)", ceiling),
        row("receiver down: deliveries PENDING at the last COMPLETED", median(down, "pending"), f"== {deliveries}"),
        row("  attempts failed by then, each retried after its backoff", median(down, "failed")),
    ]


def paired_ratio(runs: list[dict], others: list[dict], key: str) -> float:
    """The median over rounds of one figure's ratio between two runs that took turns."""
    return statistics.median(run[key] / other[key] for run, other in zip(runs, others, strict=True))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: bound, then closed. A server takes one; the webhooks section's
    receiver that is down is one no server takes, so every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deliveries_waiting(db: sqlite3.Connection) -> tuple[int, int]:
    """Deliveries still PENDING, and their attempts that failed: every one started and ended, the one leased aside.

    With the receiver down, every delivery should be PENDING, waiting for its retry, and none FAILED: not lost.
    """
    pending = "FROM webhooks_delivery WHERE status = 'PENDING'"
    count, failed = db.execute(f"SELECT COUNT(*), SUM(attempts - (leased_until IS NOT NULL)) {pending}").fetchone()
    return count, failed or 0


def subscribe(port: int, url: str) -> None:
    """Register a webhook endpoint for every event through the API, open in the bench."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/webhooks/",
        json.dumps({"url": url, "events": ["*"]}).encode(),
        {"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def deliveries_arrived(receiver: "WebhookReceiver", paths: list[str], each: int, last_201: float) -> dict:
    """Wait until `each` deliveries have arrived at each path, or 120 s; when the last came, and how long each took.

    A delivery sent twice counts once, at its first arrival; its latency is that arrival minus its event's timestamp.
    """
    deadline = time.monotonic() + 120
    while receiver.get("/count") < each * len(paths) and time.monotonic() < deadline:
        time.sleep(0.1)
    arrived = receiver.get("/deliveries")
    first: dict[tuple[str, str], dict] = {}
    for delivery in arrived:
        first.setdefault((delivery["endpoint"], delivery["id"]), delivery)
    if not first:
        raise RuntimeError("no webhook delivery arrived")
    per_path = defaultdict(int)
    for path, _ in first:
        per_path[path] += 1
    arrivals = sorted(delivery["arrived"] for delivery in first.values())
    latencies = sorted((delivery["arrived"] - delivery["at"]) * 1000 for delivery in first.values())
    return {
        "delivered": arrivals[-1] - last_201,
        "rate": len(arrivals) / (arrivals[-1] - arrivals[0]),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "missing": sum(max(0, each - per_path[path]) for path in paths),
        "repeated": len(arrived) - len(first),
    }


class WebhookReceiver:
    """benchmarks/webhooks.py on a port of its own, stopped by its PID."""

    def __enter__(self):
        command = [sys.executable, "-m", "benchmarks.webhooks"]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.port = int(self.process.stdout.readline())
        return self

    def __exit__(self, *exc_info):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)
        self.process.stdout.close()

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
            return json.load(response)


def measure_celery_burst(workdir: Path, orders: int = 1_000) -> list[dict]:
    """The 1,000-order burst in Celery mode on PostgreSQL and Redis, with the pool docs/operations.md recommends."""
    print("celery...", flush=True)
    try:
        admin = psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=3)
        redis.Redis.from_url(CELERY_BROKER, socket_connect_timeout=3).flushdb()
    except (psycopg.OperationalError, redis.ConnectionError) as exc:
        return [row(f"skipped: PostgreSQL or Redis is not reachable ({exc})", "")]
    name = f"orders_bench_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**server_env(workdir), "DATABASE_URL": f"{POSTGRES}/{name}", **CELERY_ENV}
        migrate(env)
        body = order_body(workdir)
        with Server(env) as server, CeleryWorkers(env, CELERY_WORKERS, workdir):
            intake = ab_seconds(server.port, "/api/orders/", orders, 1000, body)
            last_201 = time.time()
            drain, floor = drain_after(partial(psycopg.connect, f"{POSTGRES}/{name}"), orders, last_201)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    pool = f"{CELERY_WORKERS} workers x {CELERY_ENV['CELERY_CONCURRENCY']} threads"
    return [
        row(f"{orders:,}-order burst, Celery ({pool}): accepted in s", intake),
        row("  last 201 -> last COMPLETED, s", drain),
        row("  floor: the longest single order, s", floor),
        row("  drain / floor", drain / floor),
    ]


class CeleryWorkers:
    """`make celery` processes with CELERY_POOL and CELERY_CONCURRENCY from env, stopped by their PIDs."""

    def __init__(self, env: dict, count: int, workdir: Path):
        self.env, self.logs = env, [workdir / f"celery-{n}.log" for n in range(count)]

    def __enter__(self):
        command = [sys.executable, "-m", "celery", "-A", "order_system", "worker", "--loglevel=INFO"]
        pool = ["--pool", self.env["CELERY_POOL"], "--concurrency", self.env["CELERY_CONCURRENCY"]]
        self.processes = []
        for n, log in enumerate(self.logs):
            with log.open("w") as output:
                process = subprocess.Popen(
                    [*command, *pool, "-n", f"bench{n}@%h"],
                    cwd=ROOT,
                    env=self.env,
                    start_new_session=True,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append(process)
        deadline = time.monotonic() + 60
        while not all(" ready." in log.read_text() for log in self.logs):
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the Celery workers did not start")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc_info):
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.wait(60)


def measure_memory(workdir: Path, burst: int = 10_000) -> list[dict]:
    """Server RSS (all its processes) after one and after a second 10,000-order burst."""
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
    database, env = fresh_database(workdir, f"orders-{size}", **WORKER_OFF)
    manage = [sys.executable, "manage.py"]
    print(f"loading {size:,} orders...", flush=True)
    ids, oldest = bulk_load(database, size)
    subprocess.run([*manage, "metrics_rebuild"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    # A cursor (orders/pagination.py) positioned 90% of the way down the table.
    position = oldest + timedelta(milliseconds=size // 10) - datetime(1970, 1, 1, tzinfo=UTC)
    deep_cursor = f"n{position // timedelta(microseconds=1)}.{'f' * 32}"
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
    for section in SECTIONS:
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
    """make run's server (or another) on a free port, stopped by its PID."""

    def __init__(self, env: dict, command: list[str] = GRANIAN):  # "{port}" in the command is the port
        self.port = free_port()
        self.env = env
        self.command = command

    def __enter__(self):
        command = [part.format(port=self.port) for part in self.command]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True)
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
