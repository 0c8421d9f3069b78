"""The orders HTTP API: one thin view per operation."""

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from order_system.errors import Conflict, UnprocessableEntity
from orders.models import Order
from orders.pagination import OrderCursorPagination
from orders.selectors import order_get, order_list
from orders.serializers import (
    OrderCreateInputSerializer,
    OrderListFilterSerializer,
    OrderOutputSerializer,
    OrderStatusOutputSerializer,
)
from orders.services import IdempotencyKeyReused, OrderAlreadyExists, OrderNotInStatus, order_cancel, order_create

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Up to 255 printable ASCII characters, bare or quoted. A retry with the same key and body "
    "returns the original order with `Idempotent-Replayed: true`; the same key with another body is a 422.",
)


class OrderCreateApi(APIView):
    """POST /api/orders/: store an order and queue it."""

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OrderOutputSerializer,
            400: OpenApiResponse(description="Invalid body, field or Idempotency-Key."),
            409: OpenApiResponse(description="An order with this order_id already exists."),
            413: OpenApiResponse(description="Body over 1 MB."),
            415: OpenApiResponse(description="Content-Type is not application/json."),
            422: OpenApiResponse(description="Idempotency-Key reused with a different body."),
        },
    )
    def post(self, request):
        idempotency_key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
        data = OrderCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            order, created = order_create(**data.validated_data, idempotency_key=idempotency_key)
        except OrderAlreadyExists:
            raise Conflict({"order_id": ["An order with this order_id already exists."]}) from None
        except IdempotencyKeyReused:
            raise UnprocessableEntity(
                {"Idempotency-Key": ["This key was already used with a different request body."]}
            ) from None
        headers = {"Location": reverse("orders:detail", args=[order.pk])}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED, headers=headers)


class OrderListApi(APIView):
    """GET /api/orders/: newest first, filtered, cursor-paginated."""

    pagination_class = OrderCursorPagination

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListFilterSerializer],
        responses={200: OrderOutputSerializer(many=True), 400: OpenApiResponse(description="Bad query parameter.")},
    )
    def get(self, request):
        filters = OrderListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = order_list(status=filters.validated_data.get("status"), user_id=filters.validated_data.get("user_id"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)


class OrderCollectionApi(OrderListApi, OrderCreateApi):
    """/api/orders/: one URL, two operations, each defined by its own view above."""


class OrderDetailApi(APIView):
    """GET /api/orders/{order_id}/: the whole order."""

    @extend_schema(operation_id="orders_retrieve", responses={200: OrderOutputSerializer, 404: OpenApiResponse()})
    def get(self, request, order_id: str):
        return Response(OrderOutputSerializer(get_order_or_404(order_id)).data)


class OrderStatusApi(APIView):
    """GET /api/orders/{order_id}/status/: where an order is in its life."""

    @extend_schema(operation_id="orders_status", responses={200: OrderStatusOutputSerializer, 404: OpenApiResponse()})
    def get(self, request, order_id: str):
        return Response(OrderStatusOutputSerializer(get_order_or_404(order_id)).data)


class OrderCancelApi(APIView):
    """POST /api/orders/{order_id}/cancel/: cancel an order no worker has taken yet."""

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        responses={
            200: OrderOutputSerializer,
            404: OpenApiResponse(description="No such order."),
            409: OpenApiResponse(description="The order is not PENDING; the body's `status` says what it is."),
        },
    )
    def post(self, request, order_id: str):
        order = get_order_or_404(order_id)
        try:
            order_cancel(order_id=order.pk)
        except OrderNotInStatus as exc:
            raise Conflict(
                {"status": [f"Only a PENDING order can be cancelled; this one is {exc.status}."]},
                code="not_pending",
                extra={"status": exc.status},
            ) from None
        order.refresh_from_db()
        return Response(OrderOutputSerializer(order).data)


def get_order_or_404(order_id: str) -> Order:
    """The order for a path id; a malformed id is as unknown as a missing one."""
    try:
        return order_get(order_id=uuid.UUID(order_id))
    except (ValueError, Order.DoesNotExist):
        raise NotFound({"order_id": ["No order has this order_id."]}) from None


def parse_idempotency_key(raw: str | None) -> str | None:
    """The key from the header, bare or as a quoted string (IETF draft); None when the header is absent."""
    if raw is None:
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= 255 or not (key.isascii() and key.isprintable()):
        raise ValidationError({"Idempotency-Key": ["Must be 1 to 255 printable ASCII characters."]})
    return key
