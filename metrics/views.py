"""The live dashboard page; the browser reads everything from /api/metrics/ and /api/orders/."""

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.views.generic import TemplateView

from metrics.histograms import HISTOGRAMS
from orders.models import Order

page = TemplateView.as_view(
    template_name="metrics/dashboard.html",
    extra_context={
        "statuses": Order.Status.values,
        "latencies": [(histogram.field, histogram.label) for histogram in HISTOGRAMS.values()],
        "fields": ["count", "avg", "p50", "p95", "p99", "max"],
    },
)
staff_page = staff_member_required(page)


def dashboard(request):
    """Anyone's while the API is open. Once it is closed, a staff member's, signed in to the admin (others are sent to
    its login): the page reads the API with their session, as a browser sends no bearer token."""
    return (page if settings.API_OPEN else staff_page)(request)
