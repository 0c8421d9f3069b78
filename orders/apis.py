"""The orders HTTP API: one thin view per operation."""

import re
import uuid

from django.conf import settings
from django.utils.encoding import escape_uri_path
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from order_system.auth import ApiClient, is_operator
from order_system.errors import (
    LENGTH_REQUIRED,
    REFUSED,
    UNSUPPORTED_BODY,
    Conflict,
    UnprocessableEntity,
    error_response,
    refuse_body,
)
from orders.models import Order
from orders.pagination import OrderCursorPagination
from orders.selectors import order_get, order_list
from orders.serializers import (
    OrderCreateInputSerializer,
    OrderListFilterSerializer,
    OrderOutputSerializer,
    OrderStatusOutputSerializer,
    UserOrderCreateInputSerializer,
    order_create_input,
    order_output,
)
from orders.services import (
    IdempotencyKeyReused,
    OrderAlreadyExists,
    OrderForAnotherUser,
    OrderNotInStatus,
    order_cancel,
    order_create,
)

# 1 to 255 visible ASCII characters, bare or as an RFC 8941 sf-string (IETF draft). A bare key has no comma: WSGI
# joins two Idempotency-Key headers with one, and "a,b" must not pass for one key. A quoted key may hold a comma and
# spaces; two quoted keys joined, '"a","b"', are not one sf-string. The schema declares this same pattern.
IDEMPOTENCY_KEY_PATTERN = r'^(?:[!#-+\--~]{1,255}|"(?:[ !#-\[\]-~]|\\["\\]){1,255}")$'
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    type={"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    description="1 to 255 visible ASCII characters. Bare, a key may not contain a comma, a double quote or a space: "
    "two Idempotency-Key headers reach the server joined by a comma, so a comma means two keys and is a 400. As an "
    'RFC 8941 quoted string (`"a, b"`, with `\\"` and `\\\\` as the only escapes) it may hold all three. A retry '
    "with the same key and body returns the original order with `Idempotent-Replayed: true`; the same key with "
    "another body is a 422. Keys are the caller's own: each API token, or signed-in user, has its keys.",
)


RESPONSE_HEADERS = [
    OpenApiParameter(
        "Location", location=OpenApiParameter.HEADER, response=[201], description="/api/orders/{order_id}/"
    ),
    OpenApiParameter(
        "Idempotent-Replayed", location=OpenApiParameter.HEADER, response=[201], description="`true` on a replay."
    ),
]


class OrderCreateSchema(AutoSchema):
    """With JWT on, the create body a user sends: user_id may be left out (the server checks the same way)."""

    def get_request_serializer(self):
        return UserOrderCreateInputSerializer() if "jwt" in settings.API_AUTH else OrderCreateInputSerializer()


class OrderCreateApi(APIView):
    """POST /api/orders/: store an order and queue it."""

    throttle_scope = "order_create"
    schema = OrderCreateSchema()

    def get_throttles(self):
        """Only creating is rate-limited (ORDER_CREATE_RATE), also where this view shares its URL with the list."""
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        operation_id="orders_create",
        parameters=[IDEMPOTENCY_KEY, *RESPONSE_HEADERS],
        responses={
            201: OrderOutputSerializer,
            400: error_response("Invalid or truncated body, field, or Idempotency-Key."),
            **REFUSED,
            403: error_response("A token that may not do this, or a user's placing an order for another user_id."),
            409: error_response("An order with this order_id already exists."),
            411: error_response(LENGTH_REQUIRED),
            413: error_response("Body over 1 MB."),
            415: error_response(UNSUPPORTED_BODY),
            422: error_response("Idempotency-Key reused with a different body."),
            429: error_response("Over ORDER_CREATE_RATE; Retry-After says when to try again."),
        },
    )
    def post(self, request):
        idempotency_key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
        owner = owner_of(request)
        try:
            order, created = order_create(
                **order_create_input(request.data, by_user=owner is not None),
                idempotency_key=idempotency_key,
                caller=caller_of(request),
                owner=owner,
            )
        except OrderForAnotherUser:
            raise PermissionDenied({"user_id": ["A user places orders only for itself: leave user_id out."]}) from None
        except OrderAlreadyExists:
            raise Conflict({"order_id": ["An order with this order_id already exists."]}) from None
        except IdempotencyKeyReused:
            raise UnprocessableEntity(
                {"Idempotency-Key": ["This key was already used with a different request body."]}
            ) from None
        # The collection's URL plus the id, not reverse(): that costs a clear share of a create (docs/performance.md).
        headers = {"Location": escape_uri_path(f"{request.path}{order.pk}/")}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return Response(order_output(order), status=status.HTTP_201_CREATED, headers=headers)


class OrderListApi(APIView):
    """GET /api/orders/: newest first, filtered, cursor-paginated."""

    pagination_class = OrderCursorPagination

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListFilterSerializer],
        responses={200: OrderOutputSerializer(many=True), 400: error_response("Bad query parameter."), **REFUSED},
    )
    def get(self, request):
        # A plain dict, not the QueryDict: DRF would read "?page_size=" as absent rather than as a bad number.
        filters = OrderListFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        orders = order_list(owner=owner_of(request), status=wanted.get("status") or None, user_id=wanted.get("user_id"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutputSerializer(page, many=True).data)


class OrderCollectionApi(OrderListApi, OrderCreateApi):  # one URL, two operations, each defined by its own view above
    """Orders: list them, newest first (GET), or place one (POST)."""


class OrderDetailApi(APIView):
    """GET /api/orders/{order_id}/: the whole order."""

    @extend_schema(
        operation_id="orders_retrieve",
        responses={200: OrderOutputSerializer, **REFUSED, 404: error_response("No order has this order_id.")},
    )
    def get(self, request, order_id: str):
        return Response(order_output(get_order_or_404(order_id, owner_of(request))))


class OrderStatusApi(APIView):
    """GET /api/orders/{order_id}/status/: where an order is in its life."""

    @extend_schema(
        operation_id="orders_status",
        responses={200: OrderStatusOutputSerializer, **REFUSED, 404: error_response("No order has this order_id.")},
    )
    def get(self, request, order_id: str):
        return Response(OrderStatusOutputSerializer(get_order_or_404(order_id, owner_of(request))).data)


class OrderCancelApi(APIView):
    """POST /api/orders/{order_id}/cancel/: cancel an order no worker has taken yet."""

    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        responses={
            200: OrderOutputSerializer,
            400: error_response("The request has a body; cancelling takes none."),
            **REFUSED,
            404: error_response("No such order."),
            409: error_response("The order is not PENDING; the body's `status` says what it is."),
            411: error_response(LENGTH_REQUIRED),
            415: error_response(UNSUPPORTED_BODY),
        },
    )
    def post(self, request, order_id: str):
        refuse_body(request)
        try:
            order = order_cancel(order_id=get_order_or_404(order_id, owner_of(request)).pk)
        except OrderNotInStatus as exc:
            raise Conflict(
                {"status": [f"Only a PENDING order can be cancelled; this one is {exc.status}."]},
                code="not_pending",
                extra={"status": exc.status},
            ) from None
        return Response(order_output(order))


def order_not_found() -> NotFound:
    """A fresh 404 each time: a raised exception carries its traceback, so one instance must not be shared."""
    return NotFound({"order_id": ["No order has this order_id."]})


def parse_order_id_or_404(order_id: str) -> uuid.UUID:
    """A path id as a UUID; a malformed id is as unknown as a missing one."""
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise order_not_found() from None


def get_order_or_404(order_id: str, owner: str | None) -> Order:
    """The order for a path id, if the caller may see it."""
    try:
        return order_get(order_id=parse_order_id_or_404(order_id), owner=owner)
    except Order.DoesNotExist:
        raise order_not_found() from None


def owner_of(request) -> str | None:
    """Whose orders a request may see: its user's own (their user_id), or with None every order.

    Every order: on an open API, or for an operator (a service token, staff, a provider's admin scope).
    """
    user = request.user
    return None if user is None or is_operator(user) else user.get_username()


def caller_of(request) -> str:
    """Whose idempotency keys a request uses: its API token's, its signed-in user's, or, on an open API, everyone's."""
    user = request.user
    if isinstance(user, ApiClient):
        return f"token:{user.pk}"
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return ""


def parse_idempotency_key(raw: str | None) -> str | None:
    """The key from the header, bare or unquoted from an RFC 8941 string; None when the header is absent."""
    if raw is None:
        return None
    key = raw.strip(" \t")  # optional whitespace around a field value is not part of it (RFC 9110 5.5)
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise ValidationError(
            {
                "Idempotency-Key": [
                    "Send one key of 1 to 255 visible ASCII characters, without a comma, double quote or space unless "
                    'quoted ("..."); two Idempotency-Key headers arrive joined by a comma and are refused.'
                ]
            }
        )
    if key.startswith('"'):
        key = re.sub(r'\\(["\\])', r"\1", key[1:-1])
    return key


def add_order_links(result: dict, **kwargs) -> dict:
    """A drf-spectacular hook: OpenAPI links from a created order to its read, status and cancel operations.

    Stateful tests (schemathesis) and generated clients follow them with the new order's real id.
    """
    order_id = {"order_id": "$response.body#/order_id"}
    result["paths"]["/api/orders/"]["post"]["responses"]["201"]["links"] = {
        "GetOrder": {"operationId": "orders_retrieve", "parameters": order_id, "description": "The whole order."},
        "GetOrderStatus": {"operationId": "orders_status", "parameters": order_id, "description": "Its status."},
        "CancelOrder": {"operationId": "orders_cancel", "parameters": order_id, "description": "Cancel it."},
    }
    return result
