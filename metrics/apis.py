"""GET /api/metrics/ (JSON) and GET /metrics (Prometheus text): an operator's, once the API is closed."""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.prometheus import render_prometheus
from metrics.selectors import metrics_snapshot
from metrics.serializers import MetricsOutputSerializer
from order_system.auth import IsOperator
from order_system.errors import error_response
from order_system.parsers import StrictContentNegotiation


class MetricsApi(APIView):
    """Pipeline metrics as JSON; they always agree with the orders table."""

    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="metrics_retrieve",
        responses={
            200: MetricsOutputSerializer,
            401: error_response("No token, or one that is not valid (with API_TOKENS or API_AUTH set)."),
            403: error_response("A user's token: the metrics are for service tokens and staff."),
        },
    )
    def get(self, request):
        return Response(MetricsOutputSerializer(metrics_snapshot()).data)


class AnyAccept(StrictContentNegotiation):
    """Prometheus' text whatever a scraper says it accepts; a refusal in the API's JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)  # Prometheus' text, not the JSON API
class PrometheusMetricsApi(APIView):
    """The same numbers in Prometheus' text format; right across processes, since they come from the database.

    A view of the API's, so a scraper authenticates as any API client does: with a service token, once it is closed.
    """

    permission_classes = [IsOperator]
    content_negotiation_class = AnyAccept

    def get(self, request):
        return HttpResponse(render_prometheus(metrics_snapshot()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
