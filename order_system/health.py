"""Liveness (/healthz, no database) and readiness (/readyz: the database and the queue backend answer)."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe

from orders.queueing import get_backend


@require_safe
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request):
    """Send traffic here only if orders can be stored and processed; a 503 names what is not ready, and why."""
    checks = {"database": _database_problem(), "queue": get_backend().health()}
    problems = {name: problem for name, problem in checks.items() if problem}
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ready"})


def _database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {exc}"
    return None
