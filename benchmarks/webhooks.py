"""make bench's webhooks section: a receiver that answers every delivery 204 at once and notes when it arrived.

    python -m benchmarks.webhooks   (benchmarks/bench.py runs it; it prints its port, then serves until SIGTERM)

A process of its own, so it takes no GIL from the server under test; a bare asyncio protocol on one event loop,
because it does nothing but split requests and answer, where http.server would parse every header into a Message and
take a thread per connection. No signature is verified: tests/webhooks does that, and here it would only slow the
answer. Deliveries may go to any path: each path is one endpoint. Two GETs are for the bench:

    GET /count        how many deliveries have arrived, retries included
    GET /deliveries   each one as JSON: endpoint (the path), id (webhook-id), arrived (Unix time), and the event's
                      type and timestamp from its body
"""

import asyncio
import json
import signal
import time
from datetime import datetime

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class Receiver(asyncio.Protocol):
    """One keep-alive connection: each request is answered as soon as its body is in, then noted."""

    def __init__(self, arrived: list):
        self.arrived = arrived  # (Unix time, path, webhook-id, body), shared by every connection
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            request_line, *lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
            length = int(headers.get("content-length", 0))
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body is still on its way
            body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
            method, path, version = request_line.split(" ", 2)
            if method == "GET":
                self.answer(json.dumps(self.report(path)).encode())
            else:
                self.transport.write(NO_CONTENT)
                self.arrived.append((time.time(), path, headers.get("webhook-id"), body))
            if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
                self.transport.close()  # ab and urllib wait for the close
                return

    def answer(self, content: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n"
        self.transport.write(head.encode() + content)

    def report(self, path: str) -> int | list[dict]:
        """What GET /count or GET /deliveries asks for; the bodies are read only now, after the run."""
        if path == "/count":
            return len(self.arrived)
        deliveries = []
        for arrived, endpoint, message_id, body in self.arrived:
            event = json.loads(body)
            timestamp = datetime.fromisoformat(event["timestamp"]).timestamp()
            deliveries.append(
                {"endpoint": endpoint, "id": message_id, "arrived": arrived, "type": event["type"], "at": timestamp}
            )
        return deliveries


async def serve() -> None:
    arrived: list = []
    server = await asyncio.get_running_loop().create_server(lambda: Receiver(arrived), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve())
