"""The live dashboard page; the browser reads everything from /api/metrics/ and /api/orders/."""

from django.views.generic import TemplateView

from orders.models import Order

dashboard = TemplateView.as_view(
    template_name="metrics/dashboard.html",
    extra_context={
        "statuses": Order.Status.values,
        "latencies": [
            ("processing_time_seconds", "Processing"),
            ("queue_wait_seconds", "Queue wait"),
            ("end_to_end_seconds", "End to end"),
        ],
        "fields": ["count", "avg", "p50", "p95", "p99", "max"],
    },
)
