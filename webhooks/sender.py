"""DeliverySender: this process's webhook deliveries, many in flight at once on one asyncio event loop."""

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from functools import partial

from order_system.forks import start_over_in_forked_children
from order_system.threads import ThreadPool, requests_in_flight
from webhooks import wakeups
from webhooks.addresses import guarded_client
from webhooks.posting import post_attempt
from webhooks.services import (
    STRANDED_SWEEP_SECONDS,
    Attempt,
    Outcome,
    deliveries_claim,
    deliveries_record,
    deliveries_release_stranded,
)

logger = logging.getLogger(__name__)

# A round (what ended is written, then what is due claimed) starts at most this often: under load each round carries
# many deliveries, so the sender takes the database's write lock a few times a second, not once per request.
ROUND_SECONDS = 0.05
# While this process answers requests, a round waits for them to end, up to this long: deliveries can wait, a client
# can't, and both want the CPU and the database's write lock. After a wait that long the sender takes TURN_SECONDS
# without waiting, so constant requests, even refused ones, slow the deliveries down but never stop them.
YIELD_SECONDS = 2.0
TURN_SECONDS = 1.0


class DeliverySender:
    """Sends due deliveries, up to `concurrency` at once and `per_endpoint` to one endpoint, from one daemon thread.

    The thread runs an event loop that works in rounds: each writes how the requests that ended went and claims what is
    due, on a database thread of its own, so the loop never waits on the database, and nothing here waits on the order
    worker or holds it up. A round starts when woken (deliveries committed in this process, a request ended) and every
    `sweep_seconds` (retries come due, deliveries other processes wrote or a dead sender left).
    """

    def __init__(self, *, concurrency: int, timeout: float, sweep_seconds: float):
        self.concurrency = concurrency
        self._timeout = timeout
        self._sweep_seconds = sweep_seconds
        self.start_over()
        start_over_in_forked_children(self)

    def start_over(self) -> None:
        """A new sender's state; in a forked child, which has none of the loop's threads, the parent's is dropped."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._grace = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._woken = asyncio.Event()
        self._sending: set[asyncio.Task] = set()
        self._outcomes: list[Outcome] = []  # ended, not written yet
        self._busy: Counter = Counter()  # requests in flight per endpoint
        self._turn_until = 0.0  # the loop's time until which rounds don't give way to requests

    def start(self) -> None:
        """Start the loop thread; calling it again does nothing."""
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        wakeups.listen(self)
        self._thread.start()

    def wake(self, deliveries=None) -> None:
        """Look for due deliveries now, whichever the wake-up names; from any thread."""
        if (loop := self._loop) is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the sender has stopped
                loop.call_soon_threadsafe(self._woken.set)

    def stop(self, *, timeout: float) -> None:
        """Claim nothing more; requests in flight get up to timeout to end, and how they went is written; the rest are
        cancelled and left to their lease."""
        self._grace = timeout
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout + 5)

    @property
    def in_flight(self) -> int:
        return len(self._sending)

    @property
    def alive(self) -> bool:
        """The loop thread is running (it ends if a round fails outside the database calls)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except Exception:
            logger.exception("the webhook sender stopped; deliveries wait for another process or a restart")
        finally:
            self._loop.close()

    async def _main(self) -> None:
        database = ThreadPool(1, "webhook-database")
        client = guarded_client(timeout=self._timeout)
        loop, next_round, next_stranded_sweep = asyncio.get_running_loop(), 0.0, 0.0
        try:
            while not self._stopping.is_set():
                self._woken.clear()  # first: whatever happens from now on wakes the next round
                await asyncio.sleep(next_round - loop.time())
                await self._yield_to_requests()
                next_round = loop.time() + ROUND_SECONDS
                await self._record(database)
                if loop.time() >= next_stranded_sweep:
                    next_stranded_sweep = loop.time() + STRANDED_SWEEP_SECONDS
                    await self._release_stranded(database)
                await self._claim(database, client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self._sweep_seconds)
            if self._sending:
                _, unfinished = await asyncio.wait(self._sending, timeout=self._grace)
                for task in unfinished:
                    task.cancel()  # its delivery is sent again once its lease is over
                await asyncio.gather(*unfinished, return_exceptions=True)
            await self._record(database)
        finally:
            await client.aclose()
            database.shutdown()

    async def _yield_to_requests(self) -> None:
        """Wait until this process answers no request, at most YIELD_SECONDS, unless it is the sender's turn."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._turn_until:
            return
        deadline = loop.time() + YIELD_SECONDS
        while requests_in_flight and not self._stopping.is_set():
            if (left := deadline - loop.time()) <= 0:
                self._turn_until = loop.time() + TURN_SECONDS
                return
            await asyncio.sleep(min(ROUND_SECONDS, left))

    async def _record(self, database: ThreadPool) -> None:
        """Write how the attempts that ended since the last round went, in one transaction."""
        outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            failed = f"{len(outcomes)} webhook outcomes were not written; their leases bring them back"
            await self._on_database(database, partial(deliveries_record, outcomes=outcomes), failed)

    async def _release_stranded(self, database: ThreadPool) -> None:
        """Release what a crash left waiting (deliveries_release_stranded)."""
        failed = "releasing stranded webhook deliveries failed; trying again at the next sweep"
        await self._on_database(database, deliveries_release_stranded, failed)

    async def _claim(self, database: ThreadPool, client) -> None:
        room = self.concurrency - len(self._sending)
        if room <= 0 or self._stopping.is_set():
            return
        claim = partial(deliveries_claim, limit=room, busy=dict(self._busy))
        failed = "claiming webhook deliveries failed; trying again at the next sweep"
        attempts = await self._on_database(database, claim, failed) or []
        for attempt in attempts:
            self._busy[attempt.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(client, attempt))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _on_database(database: ThreadPool, call, failed: str):
        """call() on the database thread, so the loop never waits on the database; None, and failed logged with the
        exception, if it raises: the round goes on."""
        try:
            return await asyncio.wrap_future(database.submit(call))
        except Exception:
            logger.exception(failed)
            return None

    async def _deliver(self, client, attempt: Attempt) -> None:
        """Send one attempt; the next round writes how it went, and only then may its order's next event go."""
        try:
            outcome = await post_attempt(client, attempt, timeout=self._timeout)
            self._outcomes.append(outcome)  # after the await: a round may have swapped the list meanwhile
        finally:
            self._busy[attempt.endpoint_id] -= 1
            self._woken.set()
