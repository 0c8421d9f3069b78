"""Metrics app: what an operator watches about the order pipeline."""

import time

from django.apps import AppConfig

PROCESS_STARTED = time.monotonic()  # imported while Django sets up, so: when this process started serving


class MetricsConfig(AppConfig):
    """Metrics app."""

    name = "metrics"
