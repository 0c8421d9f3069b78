"""The live dashboard page; the browser reads everything from /api/metrics/ and /api/orders/."""

from django.views.generic import TemplateView

from metrics.histograms import HISTOGRAMS
from orders.models import Order

dashboard = TemplateView.as_view(
    template_name="metrics/dashboard.html",
    extra_context={
        "statuses": Order.Status.values,
        "latencies": [(histogram.field, histogram.label) for histogram in HISTOGRAMS.values()],
        "fields": ["count", "avg", "p50", "p95", "p99", "max"],
    },
)
