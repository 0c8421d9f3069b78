"""The HTTP server of `make run` and `make serve`: granian, with its whole configuration in this one place.

    python -m order_system.server --bind 127.0.0.1:8000

WEB_CONCURRENCY sets the processes (2) and WEB_THREADS the request threads in each (16). Each process serves
order_system.rsgi's application and runs its own order worker.
"""

import argparse
import os
import resource
import sys

from order_system.env import env_int

# A client gets this long to send its request line and headers, then its connection is closed. Requests of this API
# are a few hundred bytes: 5 s is ample for a real client on a bad network, and a connection that sends nothing holds
# no thread meanwhile, only a socket.
HEADER_READ_SECONDS = 5
# And this long for its body (at most 1 MB), or it gets a 408. The body is read on the event loop, not on a thread.
BODY_READ_SECONDS = 30.0
# Once the process is told to stop, a body still arriving gets this long before a 503: granian's worker process exits
# only when its last connection is done.
STOPPING_BODY_READ_SECONDS = 1.0
# A deep listen queue: the README's 1,000 simultaneous curls wait here instead of being reset.
BACKLOG = 2048
# Connections each process serves at once, slow ones included: each costs a file descriptor and a little memory,
# never a thread. granian's default, backlog / processes (1,024), let 2,100 clients trickling their bodies stop the
# server for the 30 s of their body limit.
CONNECTIONS = 16_384
# File descriptors kept for everything else: database connections, the log, the lock file, a processor's sockets.
OTHER_FILES = 256


if "GUNICORN_THREADS" in os.environ:
    sys.exit("GUNICORN_THREADS is gone with gunicorn: set WEB_THREADS, the request threads of each process")
# 16, not 8: more creates share each group commit (docs/performance.md).
THREADS = env_int("WEB_THREADS", 16, minimum=1)


def connections_allowed() -> int:
    """Raise the open-file limit towards CONNECTIONS (worker processes inherit it); the connections it then allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS + OTHER_FILES
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(1, min(CONNECTIONS, soft - OTHER_FILES))


def where_everything_is(url: str) -> str:
    """What a newcomer wants to see once the server starts: the addresses, and how to get into the admin."""
    return (
        f"Serving the order system on {url}/\n"
        f"  API:        {url}/api/orders/\n"
        f"  API docs:   {url}/api/docs/\n"
        f"  Dashboard:  {url}/dashboard/\n"
        f"  Admin:      {url}/admin/ (first: .venv/bin/python manage.py createsuperuser)\n"
        f"  Health:     {url}/healthz and {url}/readyz"
    )


def main() -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    parser = argparse.ArgumentParser(description="Serve the project with granian.")
    parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port to listen on")
    host, _, port = parser.parse_args().bind.rpartition(":")
    print(where_everything_is(f"http://{host}:{port}"), flush=True)
    Server(
        "order_system.rsgi:application",
        address=host.strip("[]"),  # [::]:8000 listens on every IPv6 address
        port=int(port),
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,  # what gunicorn spoke; order_system.rsgi reads bodies by HTTP/1.1's rules
        workers=env_int("WEB_CONCURRENCY", 2, minimum=1),
        backlog=BACKLOG,
        backpressure=connections_allowed(),
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_SECONDS * 1000),
        websockets=False,
    ).serve()


if __name__ == "__main__":
    main()
