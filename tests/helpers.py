"""Test helpers: real threads, and a real server subprocess."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def run_concurrently(task, count: int, timeout: float = 60) -> list:
    """Run task() in count real threads released at the same instant; returns their results."""
    barrier = threading.Barrier(count)
    results = []

    def run():
        barrier.wait(timeout)
        try:
            results.append(task())
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert len(results) == count, "a thread did not finish in time"
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real gunicorn server (make run's configuration) on 127.0.0.1 with its own SQLite file."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = tmp_path / "server.sqlite3"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.database}",
            "ORDER_PROCESSING_SECONDS": "0",
            **env,
        }
        self.log = tmp_path / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        command = [sys.executable, "-m", "gunicorn", "--config", "order_system/gunicorn.conf.py"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--bind", f"127.0.0.1:{self.port}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches the workers too
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not come up in {timeout}s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
