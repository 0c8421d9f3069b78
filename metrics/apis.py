"""GET /api/metrics/ (JSON) and GET /metrics (Prometheus text)."""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.prometheus import render_prometheus
from metrics.selectors import metrics_snapshot
from metrics.serializers import MetricsOutputSerializer


class MetricsApi(APIView):
    """Pipeline metrics as JSON; they always agree with the orders table."""

    @extend_schema(operation_id="metrics_retrieve", responses={200: MetricsOutputSerializer})
    def get(self, request):
        return Response(MetricsOutputSerializer(metrics_snapshot()).data)


def prometheus_metrics(request):
    """The same numbers in Prometheus' text format; right across processes, since they come from the database."""
    return HttpResponse(render_prometheus(metrics_snapshot()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
