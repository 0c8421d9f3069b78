"""Processors for tests, named by ORDER_PROCESSOR like a user's own; servers started by tests import them too."""

import asyncio
import os
import threading
import time
from collections import defaultdict

from orders.models import Order
from orders.processors import OrderSnapshot, Reject, Retry, simulate

# What each processor does is chosen by the order's user_id, so one test can place orders of every kind.
SLOW_SECONDS = 30.0


# When each attempt started, by order: for tests that run the worker in their own process.
started: dict = defaultdict(list)


def _outcome(order: OrderSnapshot, wait) -> object:
    started[order.order_id].append(time.monotonic())
    match order.user_id:
        case "returns-a-result":
            return {"charged": str(order.total_amount), "items": list(order.item_ids), "attempt": order.attempt}
        case "returns-none":
            return None
        case "rejects":
            raise Reject("card declined")
        case "retries":
            raise Retry("gateway timeout")
        case "retries-later":
            raise Retry("gateway busy", delay=1)
        case "raises":
            raise ValueError("stock service returned garbage")
        case "returns-a-list":
            return [1, 2]
        case "returns-nan":
            return {"rate": float("nan")}
        case "returns-a-nul":
            return {"note": "a\x00b"}
        case "returns-decimals":
            return {"amount": order.total_amount, 7: order.item_ids}
        case "rejects-without-words":
            raise Reject(None)
        case "returns-its-pid":
            return {"pid": os.getpid()}
        case "retries-at-once":
            if order.attempt < 2:
                raise Retry("busy", delay=0)
            return {"attempt": order.attempt}
        case "succeeds-on-attempt-2":
            if order.attempt < 2:
                raise Retry("not yet")
            return {"attempt": order.attempt}
        case "hangs":
            return wait
    raise AssertionError(f"no behaviour for user_id {order.user_id!r}")


async def by_user_id(order: OrderSnapshot) -> dict | None:
    """Async: returns, rejects, retries, raises or hangs, as the user_id says."""
    outcome = _outcome(order, "hang")
    if outcome == "hang":
        await asyncio.sleep(SLOW_SECONDS)
        raise AssertionError("a hanging attempt should have been cancelled at its timeout")
    return outcome


def by_user_id_sync(order: OrderSnapshot) -> dict | None:
    """The same as a plain def; a hanging one returns when `release` is set, or after HANG_SECONDS."""
    outcome = _outcome(order, "hang")
    if outcome == "hang":
        release.wait(HANG_SECONDS)
        return {"finished": "too late"}
    return outcome


HANG_SECONDS = 1.0
release = threading.Event()
gate = threading.Event()


async def waits_for_the_gate(order: OrderSnapshot) -> None:
    """Holds every attempt until `gate` is set: the attempts then end together, whatever cycles claimed them."""
    if not await asyncio.to_thread(gate.wait, SLOW_SECONDS):
        raise AssertionError("the gate was never opened")


async def takes_nothing() -> None:
    """A processor with the wrong signature: calling it fails, not the worker."""


async def fail_or_reject_some(order: OrderSnapshot) -> dict:
    """The simulation (ORDER_PROCESSING_SECONDS, ORDER_FAILURE_RATE), rejecting one order in 10 and keeping a result."""
    if order.total_amount % 10 == 3:
        raise Reject("card declined")
    await simulate(order)
    return {"attempt": order.attempt}


async def logged(order: OrderSnapshot) -> None:
    """The simulation, writing when each attempt starts and ends (or is cancelled) to TEST_PROCESSOR_LOG."""
    _log("start", order)
    try:
        await simulate(order)
    except asyncio.CancelledError:
        _log("cancelled", order)
        raise
    _log("end", order)


def _log(event: str, order: OrderSnapshot) -> None:
    line = f"{event} {order.order_id} {order.attempt} {time.time():.6f} {os.getpid()}\n"
    with open(os.environ["TEST_PROCESSOR_LOG"], "a") as log:  # one short append: lines never interleave
        log.write(line)


def uses_the_orm(order: OrderSnapshot) -> dict:
    """A plain def doing what Django code does: reads and writes through the ORM, then waits on something slow."""
    stored = Order.objects.get(pk=order.order_id)
    others = Order.objects.filter(user_id=order.user_id).count()
    time.sleep(0.2)
    return {"status_seen": stored.status, "orders_of_user": others, "thread": threading.current_thread().name}
