"""Keyset pagination for order lists: each page starts just past one order's (created_at, order_id)."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from orders.models import Order

# n (the orders after the position: older) or p (before it: newer), then the position: created_at in microseconds
# since the Unix epoch (UTC) and order_id in hex. 16 digits reach the year 2286, well inside every database's range,
# so every string this matches is a position the list can start from.
CURSOR = re.compile(r"[np][0-9]{1,16}\.[0-9a-f]{32}")
MAX_CREATED_AT = 10**16 - 1
PAGE_SIZE = re.compile(r"0*([1-9][0-9]{0,2})")  # ASCII digits only: int() also takes " 5", "+5", Arabic-Indic digits
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NEWEST_FIRST = ("-created_at", "-order_id")
OLDEST_FIRST = ("created_at", "order_id")


@dataclass(frozen=True)
class Position:
    """Where an order stands in the list: orders are listed from the greatest (created_at, order_id) to the least."""

    created_at: int  # microseconds since the epoch
    order_id: int

    @classmethod
    def of(cls, order: Order) -> "Position":
        return cls((order.created_at - EPOCH) // MICROSECOND, order.order_id.int)

    def older(self) -> Q:
        """The orders listed after this position: (created_at, order_id) < (self.created_at, self.order_id)."""
        created_at, order_id = self._values()
        # created_at__lte first: the index is walked from there, and only this position's ties are checked further.
        return Q(created_at__lte=created_at) & (Q(created_at__lt=created_at) | Q(order_id__lt=order_id))

    def newer(self) -> Q:
        """The orders listed before this position."""
        created_at, order_id = self._values()
        return Q(created_at__gte=created_at) & (Q(created_at__gt=created_at) | Q(order_id__gt=order_id))

    def step(self, by: int) -> "Position":
        """The position just after (by=1) or just before (by=-1) this one in (created_at, order_id) order."""
        carry, order_id = divmod(self.order_id + by, 2**128)  # past the last (or first) UUID, created_at moves on
        return Position(self.created_at + carry, order_id)

    def cursor(self, direction: str) -> str | None:
        """The cursor of the page on this side of the position (n: after, p: before); None beyond the cursor's range."""
        if not 0 <= self.created_at <= MAX_CREATED_AT:
            return None
        return f"{direction}{self.created_at}.{self.order_id:032x}"

    def _values(self) -> tuple[datetime, UUID]:
        return EPOCH + self.created_at * MICROSECOND, UUID(int=self.order_id)


class OrderCursorPagination(BasePagination):
    """Newest first; a page is the orders just past its cursor's position, so no offset is ever counted.

    An order is on a page or not by its own (created_at, order_id), which never changes: orders added, cancelled or
    processed while a client walks the list cannot shift it, and each page costs one index range scan.
    """

    page_size = 50
    max_page_size = 200

    def paginate_queryset(self, queryset: QuerySet[Order], request, view=None) -> list[Order]:
        """One page of the queryset, at the request's cursor; a malformed cursor or page_size is a 400 naming it."""
        self.base_url = request.build_absolute_uri()
        direction, position, size = self._parameters(request.query_params)
        # One row past the page says whether there is a page beyond it. An empty page (its orders left the list since
        # the link was made) links back to the page that ends with the cursor's own order.
        if direction == "p":
            rows = list(queryset.filter(position.newer()).order_by(*OLDEST_FIRST)[: size + 1])
            page = rows[:size][::-1]
            self.previous = Position.of(page[0]).cursor("p") if len(rows) > size else None
            self.next = Position.of(page[-1]).cursor("n") if page else position.step(1).cursor("n")
            return page
        if position:
            queryset = queryset.filter(position.older())
        rows = list(queryset.order_by(*NEWEST_FIRST)[: size + 1])
        page = rows[:size]
        self.next = Position.of(page[-1]).cursor("n") if len(rows) > size else None
        self.previous = None
        if position:
            self.previous = Position.of(page[0]).cursor("p") if page else position.step(-1).cursor("p")
        return page

    def get_paginated_response(self, data) -> Response:
        return Response({"next": self._link(self.next), "previous": self._link(self.previous), "results": data})

    def _link(self, cursor: str | None) -> str | None:
        return None if cursor is None else replace_query_param(self.base_url, "cursor", cursor)

    def _parameters(self, params) -> tuple[str, Position | None, int]:
        """The cursor's direction and position (none: the first page), and the page size."""
        errors = {}
        direction, position = "n", None
        if (cursor := params.get("cursor")) is not None:
            if CURSOR.fullmatch(cursor):
                direction, (created_at, order_id) = cursor[0], cursor[1:].split(".")
                position = Position(int(created_at), int(order_id, 16))
            else:
                errors["cursor"] = ["Not a cursor of this list: follow the `next` and `previous` links as they are."]
        size = self.page_size
        if (page_size := params.get("page_size")) is not None:
            if (digits := PAGE_SIZE.fullmatch(page_size)) and int(digits[1]) <= self.max_page_size:
                size = int(digits[1])
            else:
                errors["page_size"] = [f"Must be a whole number from 1 to {self.max_page_size}, in the digits 0-9."]
        if errors:
            raise ValidationError(errors)
        return direction, position, size

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque: take it from `next` or `previous`, whose pages start just past an order.",
                "schema": {"type": "string", "pattern": f"^{CURSOR.pattern}$"},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"Orders per page, {self.page_size} by default.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    def get_paginated_response_schema(self, schema: dict) -> dict:
        def link(description: str) -> dict:
            return {"type": "string", "nullable": True, "format": "uri", "description": description}

        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": link("The page of older orders; null on the last page."),
                "previous": link("The page of newer orders; null on the first page."),
                "results": schema,
            },
        }
