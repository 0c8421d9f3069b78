"""Liveness: answers while the process can serve, without touching the database."""

from django.http import JsonResponse
from django.views.decorators.http import require_safe


@require_safe
def healthz(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})
