"""Keyset pagination for order lists."""

from datetime import UTC

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class OrderCursorPagination(CursorPagination):
    """Newest first, by created_at: a page deep in a million orders costs the same as the first."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        """A cursor the client tampered with is a bad query parameter (400), not a missing page."""
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                parse_datetime(cursor.position).astimezone(UTC)  # None, or out of range for the database: invalid
        except (NotFound, ValueError, OverflowError, AttributeError):
            raise ValidationError({"cursor": ["Invalid cursor."]}, code="invalid") from None
        return cursor
