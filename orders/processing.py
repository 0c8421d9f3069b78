"""The job every queue backend runs: claim an order, run ORDER_PROCESSOR on it, record how the attempt ended.

Also the sweeps that find orders needing work. Only backends (and the worker they run) import this module.
"""

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from uuid import UUID

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connections, transaction
from django.utils.module_loading import import_string

from metrics.services import metrics_batch
from orders.processors import OrderSnapshot, Reject, Retry
from orders.selectors import order_ids_due
from orders.services import (
    Claim,
    order_fail_attempt,
    orders_claim,
    orders_complete,
    orders_expire_leases,
    orders_release,
    orders_send_due,
)

logger = logging.getLogger(__name__)

# How many due orders one sweep queues at most, so a huge backlog never floods memory.
SWEEP_BATCH = 1000
# Failure reasons are stored and shown; a processor's exception message can be any length.
MAX_REASON = 1000


@dataclass(frozen=True)
class Processor:
    """The callable ORDER_PROCESSOR names, and whether it is async (run on an event loop) or plain (run in a thread)."""

    function: Callable[[OrderSnapshot], object]
    is_async: bool


def get_processor() -> Processor:
    """ORDER_PROCESSOR, imported; ImproperlyConfigured, naming the setting, if the path is wrong or not callable."""
    return _load_processor(settings.ORDER_PROCESSOR)


@cache
def _load_processor(path: str) -> Processor:
    try:
        function = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"ORDER_PROCESSOR {path!r} can't be imported: {exc}") from exc
    if not callable(function):
        raise ImproperlyConfigured(f"ORDER_PROCESSOR {path!r} is not callable (its type is {type(function).__name__})")
    # An instance with an async __call__ is async too.
    is_async = iscoroutinefunction(function) or iscoroutinefunction(type(function).__call__)
    return Processor(function, is_async)


@dataclass(frozen=True)
class Completed:
    """The processor returned: the order is COMPLETED, with what it returned as its result."""

    claim: Claim
    result: dict | None


@dataclass(frozen=True)
class Failed:
    """A failed attempt: retried after the backoff (or delay seconds), unless final (Reject) or the last one."""

    claim: Claim
    reason: str
    final: bool = False
    delay: float | None = None


@dataclass(frozen=True)
class HandedBack:
    """The attempt was cut short by a shutdown: the order goes back to PENDING, and the attempt does not count."""

    claim: Claim


Outcome = Completed | Failed | HandedBack


def start_work(processor: Processor, order: OrderSnapshot, *, run_sync: Callable[..., Future] | None) -> Awaitable:
    """The processor's work on one order, to await: its coroutine, or for a plain def, its thread, started now.

    run_sync(function, order) runs a plain def in another thread and returns its future, so the loop never waits on
    it. Nothing here calls the processor on the loop itself: whatever calling it raises is the attempt's failure.
    """
    if processor.is_async:
        return _call(processor.function, order)
    return asyncio.wrap_future(run_sync(processor.function, order))


async def _call(function: Callable, order: OrderSnapshot):
    return await function(order)


async def run_attempt(claim: Claim, work: Awaitable) -> Outcome:
    """Wait for the work, at most ORDER_PROCESSING_TIMEOUT_SECONDS, and say how the attempt ended.

    Only a cancellation (the worker's shutdown) escapes. Async work still running at the timeout is cancelled. A
    plain def can't be stopped: the order stays this worker's until its thread returns, so that nobody else starts
    it meanwhile, and then the attempt is a failed one whatever it returned.
    """
    seconds = settings.ORDER_PROCESSING_TIMEOUT_SECONDS
    in_a_thread = isinstance(work, asyncio.Future)
    try:
        async with asyncio.timeout(seconds) as deadline:
            result = await (asyncio.shield(work) if in_a_thread else work)
        return Completed(claim, _checked_result(result))
    except Reject as rejection:
        return Failed(claim, str(rejection.reason)[:MAX_REASON], final=True)
    except Retry as retry:
        return Failed(claim, str(retry.reason)[:MAX_REASON], delay=retry.delay)
    except InvalidResult as invalid:
        # The work was done: trying again would do it again.
        return Failed(claim, f"The processor's result was refused: {invalid}"[:MAX_REASON], final=True)
    except Exception as exc:
        if not (isinstance(exc, TimeoutError) and deadline.expired()):
            # The order keeps one line of it; the log keeps the traceback, to debug the processor with.
            logger.warning("order_id=%s attempt=%d failed", claim.order_id, claim.attempt, exc_info=True)
            return Failed(claim, f"{type(exc).__name__}: {exc}"[:MAX_REASON])
        logger.warning("order_id=%s attempt=%d timed out after %gs", claim.order_id, claim.attempt, seconds)
        if in_a_thread:
            await asyncio.wait([work])
        return Failed(claim, f"Timed out after {seconds:g} s (ORDER_PROCESSING_TIMEOUT_SECONDS).")


class InvalidResult(Exception):
    """A processor returned something that can't be stored as an order's result."""


def _checked_result(result: object) -> dict | None:
    """None, or the dict as JSON gives it back: Decimal, datetime and UUID values become strings, as Django's JSON
    encoder writes them, and keys become strings. NaN and NUL characters are refused, as PostgreSQL's jsonb refuses
    them; so is anything else that is not JSON."""
    if result is None:
        return None
    if not isinstance(result, dict):
        raise InvalidResult(f"a processor returns None or a dict, not {type(result).__name__}")
    try:
        text = json.dumps(result, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidResult(f"it is not JSON: {exc}") from None
    stored = json.loads(text)
    if _has_nul(stored):
        raise InvalidResult("it holds a NUL character")
    return stored


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return isinstance(value, list) and any(map(_has_nul, value))


def record(outcomes: list[Outcome]) -> None:
    """Write how attempts ended: completions in one UPDATE, hand-backs in another, failed attempts one by one."""
    completed = [outcome for outcome in outcomes if isinstance(outcome, Completed)]
    orders_complete(
        claims=[outcome.claim for outcome in completed],
        results={outcome.claim.order_id: outcome.result for outcome in completed},
    )
    orders_release(claims=[outcome.claim for outcome in outcomes if isinstance(outcome, HandedBack)])
    for outcome in outcomes:
        if isinstance(outcome, Failed):
            order_fail_attempt(claim=outcome.claim, reason=outcome.reason, final=outcome.final, delay=outcome.delay)


def record_and_claim(outcomes: list[Outcome], order_ids: list[UUID]) -> list[Claim]:
    """Write how attempts ended and claim the next orders in one transaction: one commit, and one metrics write.

    If that fails, each outcome is written alone, so one the database refuses can't take the others down with it;
    one that still fails is left to its lease.
    """
    try:
        with transaction.atomic(), metrics_batch():
            record(outcomes)
            return orders_claim(order_ids=order_ids)
    except Exception:
        if not outcomes:
            raise
        logger.exception("writing %d outcomes together failed; writing each alone", len(outcomes))
    for outcome in outcomes:
        try:
            record([outcome])
        except Exception:
            logger.exception(
                "order_id=%s: its outcome could not be written; its lease brings it back", outcome.claim.order_id
            )
    return orders_claim(order_ids=order_ids)


def attempt_order(order_id: UUID) -> None:
    """Claim one order, run one attempt on an event loop of its own, and record it (Celery and immediate mode)."""
    claims = orders_claim(order_ids=[order_id])
    if claims:
        # Hold no connection while the processor waits: with DATABASE_POOL_SIZE this one goes back to the pool, so a
        # hundred tasks in flight share a few (a persistent connection, CONN_MAX_AGE > 0, stays).
        close_old_connections()
        record([asyncio.run(_attempt_alone(get_processor(), claims[0]))])


async def _attempt_alone(processor: Processor, claim: Claim) -> Outcome:
    return await run_attempt(claim, start_work(processor, claim.order, run_sync=in_new_thread))


def in_new_thread(function: Callable, *args) -> Future:
    """Run a plain def in a daemon thread of its own, for an attempt's event loop to wait on without blocking; the
    thread closes its database connections when done, since no one else can."""
    future: Future = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function(*args))
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                connections.close_all()

    threading.Thread(target=run, name="order-processor", daemon=True).start()
    return future


def recover_and_find_due() -> list[UUID]:
    """The thread backend's sweep: recover claims whose worker died, then list the orders due, oldest first."""
    orders_expire_leases()
    return order_ids_due(limit=SWEEP_BATCH)


def recover_and_send_due() -> None:
    """The Celery backend's sweep: recover claims whose worker died, then send the retries whose backoff is over and
    what the broker seems to have lost."""
    orders_expire_leases()
    orders_send_due(lost_after=timedelta(seconds=settings.ORDER_REQUEUE_SECONDS), limit=SWEEP_BATCH)
