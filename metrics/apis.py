"""GET /api/metrics/."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.selectors import metrics_snapshot
from orders.models import Order


class MetricsApi(APIView):
    """Pipeline counts as JSON."""

    class OutputSerializer(serializers.Serializer):
        total_orders = serializers.IntegerField()
        orders_by_status = inline_serializer(
            "OrdersByStatus", {status: serializers.IntegerField() for status in Order.Status.values}
        )

    @extend_schema(operation_id="metrics_retrieve", responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(metrics_snapshot()).data)
