"""Metrics app: what an operator watches about the order pipeline."""

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Metrics app."""

    name = "metrics"
