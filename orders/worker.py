"""OrderWorker: many orders in flight on one asyncio event loop, fed oldest first by an in-process queue.Queue."""

import asyncio
import contextlib
import logging
import queue
import threading
import time
from functools import partial
from uuid import UUID

from order_system.threads import ThreadPool, sweep_periodically
from orders import processing
from orders.services import Claim

logger = logging.getLogger(__name__)

# How long attempts get, after the grace period, to be cancelled and handed back before stop() gives up on them.
RELEASE_SECONDS = 5.0
# The most orders one cycle claims, or records, at once: with the fences, well under SQLite's 999 parameters.
MAX_BATCH = 200
# A cycle (one transaction) starts at most this often, unless a full batch waits: under load, fewer and larger cycles
# leave the database's write lock and the process's GIL to the requests (docs/performance.md).
CYCLE_SECONDS = 0.1


class OrderWorker:
    """Runs up to `concurrency` orders at once: one daemon thread takes ids from a queue.Queue and runs an event loop.

    Async processors run on the loop, plain ones on `threads` threads of their own. The loop works in cycles: each
    writes how the attempts that ended since the last one went and claims what is queued, oldest first, as many as
    there is room for, in one transaction on a thread of its own, so the loop never waits on the database. A sweeper
    thread queues what the queue does not hold: orders left by a restart, a crash or another process, and retries
    that have come due.
    """

    def __init__(self, *, processor: processing.Processor, concurrency: int, threads: int, sweep_seconds: float):
        self._processor = processor
        # A plain def needs a thread for each order in flight.
        self.concurrency = concurrency if processor.is_async else min(concurrency, threads)
        self._threads = threads
        self._sweep_seconds = sweep_seconds
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._grace = 0.0
        self._queue: queue.Queue[UUID] = queue.Queue()
        self._queued: set[UUID] = set()  # waiting or in flight here, so nothing is queued twice
        self._in_flight = 0  # claimed here, outcome not written yet
        self._outcomes: list[processing.Outcome] = []  # ended, not written yet
        self._attempts: dict[asyncio.Task, float] = {}  # attempts running now, and when each started (monotonic)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken, self._idle, self._stop_seen = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._idle.set()  # nothing claimed, nothing being claimed
        self._wake_up_sent = False
        self._waiting_for_work = False
        self._thread: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread and the sweeper; calling it again does nothing."""
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run, name="order-worker", daemon=True)
            sweeper = partial(sweep_periodically, self._sweep, seconds=self._sweep_seconds, stop=self._stopping)
            self._sweeper = threading.Thread(target=sweeper, name="order-sweeper", daemon=True)
        self._thread.start()
        self._sweeper.start()

    def submit(self, order_id: UUID, *, delay: float = 0.0) -> bool:
        """Queue an order behind every order submitted before it, unless it is already queued here (False).

        With a delay (a retry's backoff), it is queued once the delay is over; if the process stops first, the order
        stays PENDING in the database for the sweep of whichever process runs next.
        """
        if delay > 0:
            if (loop := self._loop) is None:
                return False
            try:
                loop.call_soon_threadsafe(loop.call_later, delay, self.submit, order_id)
            except RuntimeError:
                return False  # the loop is closed: the worker has stopped
            return True
        with self._lock:
            if order_id in self._queued or self._stopping.is_set():
                return False
            self._queued.add(order_id)
        self._queue.put(order_id)
        self._wake_up()
        return True

    def stop(self, *, timeout: float) -> None:
        """Take no new orders, give those in flight up to timeout to finish, then cancel them and hand them back."""
        self._grace = timeout
        self._stopping.set()
        self._wake_up(even_if_busy=True)
        for thread in (self._thread, self._sweeper):
            if thread is not None:
                thread.join(timeout + RELEASE_SECONDS)

    @property
    def alive(self) -> bool:
        """The loop thread is running (it ends if its cycles fail)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def in_flight(self) -> int:
        """Orders claimed here whose outcome is not written yet."""
        return self._in_flight

    def running_longer_than(self, seconds: float) -> int:
        """Attempts still running after this long: plain defs that hang (async ones are cancelled at the timeout)."""
        since = time.monotonic() - seconds
        return sum(started < since for started in list(self._attempts.values()))

    def _wake_up(self, *, even_if_busy: bool = False) -> None:
        """Have the loop look at the queue again; from any thread.

        Only when it waits for work: a busy loop looks at the queue at its next cycle anyway, and each wake-up takes
        the GIL from the request threads. A wake-up already on its way is enough.
        """
        if (even_if_busy or self._waiting_for_work) and self._loop is not None and not self._wake_up_sent:
            self._wake_up_sent = True
            with contextlib.suppress(RuntimeError):  # the loop is closed: the worker has stopped
                self._loop.call_soon_threadsafe(self._woke_up)

    def _woke_up(self) -> None:
        self._wake_up_sent = False  # before looking: whatever changes after this sends a wake-up of its own
        self._woken.set()
        if self._stopping.is_set():
            self._stop_seen.set()

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        database = ThreadPool(1, "order-database")
        sync_threads = None if self._processor.is_async else ThreadPool(self._threads, "order-processor")
        cycles = asyncio.create_task(self._cycle_forever(database, sync_threads))
        stop_seen = asyncio.create_task(self._stop_seen.wait())
        try:
            await asyncio.wait([cycles, stop_seen], return_when=asyncio.FIRST_COMPLETED)
            if cycles.done():  # it can only end by failing; the loop thread ends with it
                logger.error(
                    "the order worker stopped; its orders come back when their lease expires",
                    exc_info=cycles.exception(),
                )
                return
            if not await _within(self._idle.wait(), self._grace):
                for attempt in list(self._attempts):
                    attempt.cancel()  # the grace period is over: what is still running is handed back
                if not await _within(self._idle.wait(), RELEASE_SECONDS):
                    logger.error("%d orders were not handed back; their lease will bring them back", self._in_flight)
        finally:
            for task in (cycles, stop_seen, *self._attempts):
                task.cancel()
            for pool in (database, sync_threads):
                if pool is not None:
                    pool.shutdown()

    async def _cycle_forever(self, database: ThreadPool, sync_threads: ThreadPool | None) -> None:
        """Record what ended and claim what is queued, in one transaction a cycle, while there is either to do."""
        run_sync = sync_threads.submit if sync_threads is not None else None
        loop, next_cycle = asyncio.get_running_loop(), 0.0
        while True:
            self._waiting_for_work = True  # first, so that what is queued from now on wakes the loop
            if not self._outcomes and not self._room_to_claim(freed=0):
                await self._woken.wait()
                self._woken.clear()
                continue
            self._waiting_for_work = False
            if len(self._outcomes) < MAX_BATCH and self._queue.qsize() < MAX_BATCH:
                await asyncio.sleep(next_cycle - loop.time())
            next_cycle = loop.time() + CYCLE_SECONDS
            outcomes, self._outcomes = self._outcomes[:MAX_BATCH], self._outcomes[MAX_BATCH:]
            order_ids = self._take(min(self._room_to_claim(freed=len(outcomes)), MAX_BATCH))
            # Before the write: a retry due at once is queued again as soon as the write commits.
            self._forget([outcome.claim.order_id for outcome in outcomes])
            self._idle.clear()  # a cycle that claims must finish before the worker may call itself idle
            try:
                claims = await asyncio.wrap_future(database.submit(processing.record_and_claim, outcomes, order_ids))
            except Exception:
                logger.exception("claiming %d orders failed; the sweep will queue them again", len(order_ids))
                claims = []
            claimed = {claim.order_id for claim in claims}
            self._forget([order_id for order_id in order_ids if order_id not in claimed])
            self._in_flight += len(claims) - len(outcomes)
            for claim in claims:
                if self._stopping.is_set():  # stop() came during the cycle: start nothing new
                    self._outcomes.append(processing.HandedBack(claim))
                    continue
                work = processing.start_work(self._processor, claim.order, run_sync=run_sync)
                attempt = asyncio.create_task(self._attempt(claim, work))
                self._attempts[attempt] = time.monotonic()
                attempt.add_done_callback(self._attempts.pop)
            if not self._in_flight and not self._outcomes:
                self._idle.set()

    def _room_to_claim(self, *, freed: int) -> int:
        """How many queued orders may start now, once `freed` outcomes are written; none once stopping."""
        if self._stopping.is_set() or self._queue.empty():
            return 0
        return max(self.concurrency - self._in_flight + freed, 0)

    def _take(self, count: int) -> list[UUID]:
        order_ids: list[UUID] = []
        while len(order_ids) < count:
            try:
                order_ids.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return order_ids

    async def _attempt(self, claim: Claim, work) -> None:
        try:
            outcome = await processing.run_attempt(claim, work)
        except asyncio.CancelledError:
            outcome = processing.HandedBack(claim)
        self._outcomes.append(outcome)
        self._woken.set()

    def _forget(self, order_ids: list[UUID]) -> None:
        with self._lock:
            self._queued.difference_update(order_ids)

    def _sweep(self) -> None:
        """Queue what the sweep finds; a full sweep of orders the last one did not return is part of a moving
        backlog, so the next sweep runs as soon as this part is claimed, without waiting for the clock."""
        previous: set[UUID] = set()
        while not self._stopping.is_set():
            order_ids = processing.recover_and_find_due()
            for order_id in order_ids:
                self.submit(order_id)
            if len(order_ids) < processing.SWEEP_BATCH or previous.issuperset(order_ids):
                return  # all of it, or a backlog that is not moving: the next sweep is on the clock
            previous = set(order_ids)
            deadline = time.monotonic() + self._sweep_seconds
            while not self._queue.empty() and time.monotonic() < deadline and not self._stopping.wait(0.01):
                pass


async def _within(awaitable, seconds: float) -> bool:
    """Whether the awaitable finished within the time."""
    try:
        await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        return False
    return True
