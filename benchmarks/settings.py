"""Benchmark-only settings: the product's, plus a do-nothing endpoint to measure the framework's ceiling."""

from order_system.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
