"""Prometheus text exposition of a metrics snapshot, rendered with prometheus_client."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from metrics.histograms import HISTOGRAMS, WEBHOOK_HISTOGRAMS


def render_prometheus(snapshot: dict) -> bytes:
    """Counters, gauges and histograms with buckets, from the same rows /api/metrics/ reads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)


class SnapshotCollector:
    """A one-off collector over one snapshot, so every family comes from the same moment."""

    def __init__(self, snapshot: dict):
        self.snapshot = snapshot

    def collect(self):
        snapshot, totals = self.snapshot, self.snapshot["totals"]
        for name, help_text in [
            ("created", "Orders accepted."),
            ("completed", "Orders completed."),
            ("failed", "Times an order became FAILED."),
            ("cancelled", "Orders cancelled."),
            ("retried", "Failed attempts that were tried again."),
        ]:
            yield CounterMetricFamily(f"orders_{name}", help_text, value=totals[name])
        status = GaugeMetricFamily("orders_status", "Orders in each status now.", labels=["status"])
        for name, count in snapshot["orders_by_status"].items():
            status.add_metric([name], count)
        yield status
        yield GaugeMetricFamily("orders_queue_depth", "PENDING orders.", value=snapshot["queue_depth"])
        yield GaugeMetricFamily("orders_in_flight", "PROCESSING orders.", value=snapshot["in_flight"])
        yield GaugeMetricFamily(
            "orders_oldest_pending_age_seconds",
            "Age of the oldest PENDING order.",
            value=snapshot["oldest_pending_age_seconds"] or 0,
        )
        yield GaugeMetricFamily(
            "orders_failure_rate", "Orders FAILED / (COMPLETED + FAILED), now.", value=snapshot["failure_rate"]
        )
        throughput = GaugeMetricFamily("orders_completed_per_minute", "Completion rate.", labels=["window"])
        throughput.add_metric(["1m"], snapshot["throughput"]["last_1m"])
        throughput.add_metric(["5m"], snapshot["throughput"]["last_5m"])
        yield throughput
        process = snapshot["process"]
        yield GaugeMetricFamily(
            "order_worker_concurrency", "Orders the answering process may run at once.", value=process["concurrency"]
        )
        yield GaugeMetricFamily(
            "order_worker_in_flight", "Orders the answering process runs now.", value=process["in_flight"]
        )
        for name, histogram in HISTOGRAMS.items():
            summary = snapshot[histogram.field]
            yield HistogramMetricFamily(
                f"order_{name}_seconds",
                f"{name.replace('_', ' ').capitalize()} of completed orders.",
                buckets=[(bucket["le"], bucket["count"]) for bucket in summary["buckets"]],
                sum_value=summary["sum"],
            )
        webhooks = snapshot["webhooks"]
        deliveries = GaugeMetricFamily(
            "webhook_deliveries", "Webhook deliveries in each status now.", labels=["status"]
        )
        for name, count in webhooks["deliveries"].items():
            deliveries.add_metric([name.upper()], count)
        yield deliveries
        yield GaugeMetricFamily(
            "webhook_delivery_attempts",
            "Attempts recorded on the webhook deliveries now; a redelivery or a deleted endpoint lowers it.",
            value=webhooks["attempts"],
        )
        for name, histogram in WEBHOOK_HISTOGRAMS.items():
            summary = webhooks[histogram.field]
            yield HistogramMetricFamily(
                f"webhook_{name}_seconds",
                "From an order event to its webhook's 2xx, of succeeded deliveries.",
                buckets=[(bucket["le"], bucket["count"]) for bucket in summary["buckets"]],
                sum_value=summary["sum"],
            )
        yield GaugeMetricFamily(
            "orders_uptime_seconds", "Uptime of the answering process.", value=process["uptime_seconds"]
        )
