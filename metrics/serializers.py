"""Output shapes of the metrics API, for the response and the OpenAPI schema."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from orders.models import Order
from webhooks.models import Delivery


class HistogramSerializer(serializers.Serializer):
    """Latency in seconds, of completed orders or delivered webhooks; null until the first."""

    count = serializers.IntegerField()
    sum = serializers.FloatField()
    avg = serializers.FloatField(allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    buckets = inline_serializer(
        "HistogramBucket", {"le": serializers.CharField(), "count": serializers.IntegerField()}, many=True
    )


class MinuteSerializer(serializers.Serializer):
    """Completions in one minute."""

    minute = serializers.DateTimeField()
    completed = serializers.IntegerField()


class ThroughputSerializer(serializers.Serializer):
    """Completed orders per minute."""

    last_1m = serializers.FloatField()
    last_5m = serializers.FloatField()
    per_minute = MinuteSerializer(many=True)


class ProcessSerializer(serializers.Serializer):
    """The process that answered; every other field counts the whole database, whichever process answers."""

    pid = serializers.IntegerField()
    uptime_seconds = serializers.FloatField()
    concurrency = serializers.IntegerField(help_text="Orders its worker may run at once; 0 if it runs none.")
    in_flight = serializers.IntegerField(help_text="Orders its worker runs now.")


class WebhooksSerializer(serializers.Serializer):
    """Webhook deliveries, counted as the deliveries table holds them now."""

    deliveries = inline_serializer(
        "DeliveriesByStatus", {status.lower(): serializers.IntegerField() for status in Delivery.Status.values}
    )
    attempts = serializers.IntegerField(
        help_text="Attempts recorded on the deliveries: a redelivery starts its count again, a deleted endpoint takes "
        "its deliveries' with it."
    )
    latency = HistogramSerializer(help_text="From the event to its 2xx, retries included, of succeeded deliveries.")


class MetricsOutputSerializer(serializers.Serializer):
    """GET /api/metrics/."""

    total_orders = serializers.IntegerField()
    orders_by_status = inline_serializer(
        "OrdersByStatus", {status: serializers.IntegerField() for status in Order.Status.values}
    )
    totals = inline_serializer(
        "OrderTotals",
        {name: serializers.IntegerField() for name in ("created", "completed", "failed", "cancelled", "retried")},
    )
    queue_depth = serializers.IntegerField()
    in_flight = serializers.IntegerField()
    oldest_pending_age_seconds = serializers.FloatField(allow_null=True)
    processing_time_seconds = HistogramSerializer()
    queue_wait_seconds = HistogramSerializer()
    end_to_end_seconds = HistogramSerializer()
    throughput = ThroughputSerializer()
    failure_rate = serializers.FloatField()
    retries_total = serializers.IntegerField()
    webhooks = WebhooksSerializer()
    process = ProcessSerializer()
    generated_at = serializers.DateTimeField()
