"""Input and output shapes of the orders API; field rules only, no behaviour."""

import re
from datetime import UTC
from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import Order


class StrictCharField(serializers.CharField):
    """A JSON string, never a number coerced to one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string of digits, not 1.0, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01},
            {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"},
        ]
    }
)
class MoneyField(serializers.DecimalField):
    """Non-negative, at most 2 decimal places; a JSON number or a plain decimal string; -0 is stored as 0."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, min_value=Decimal(0), **kwargs)

    def to_internal_value(self, data):
        # Decimal() alone would also take True, "1_000", " 5 " and non-ASCII digits.
        if isinstance(data, bool) or (isinstance(data, str) and not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", data)):
            self.fail("invalid")
        return super().to_internal_value(data) + 0


# Control characters (Unicode category Cc) in an id break logs, terminals and CSV exports. A regex rather than a check
# of unicodedata, so that the OpenAPI schema declares the same rule as its pattern.
no_control_characters = RegexValidator(
    r"\A[^\x00-\x1f\x7f-\x9f]*\Z", "Must not contain control characters.", code="control_characters"
)


def user_id_field(**kwargs) -> StrictCharField:
    """An order's user_id: stored exactly as sent, whitespace included."""
    return StrictCharField(
        min_length=1, max_length=128, trim_whitespace=False, validators=[no_control_characters], **kwargs
    )


class OrderCreateInputSerializer(serializers.Serializer):
    """What a client may send to place an order; anything else, such as status, is ignored."""

    order_id = StrictUUIDField(required=False, help_text="Optional; a UUID4 is generated when omitted.")
    user_id = user_id_field()
    item_ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=1000
    )
    total_amount = MoneyField(help_text="A number or numeric string, at least 0, with at most 2 decimal places.")


class UserOrderCreateInputSerializer(OrderCreateInputSerializer):
    """An order a user places with its JWT: user_id may be left out, and is then the user's own."""

    user_id = user_id_field(required=False, help_text="Yours: any other is a 403. Omitted, it is yours.")


class UTCDateTimeField(serializers.DateTimeField):
    """A timestamp in UTC whatever TIME_ZONE says, as the API promises: why it is here (docs/performance.md)."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)


class OrderModelSerializer(serializers.ModelSerializer):
    """An order's fields as the API shows them, timestamps in UTC."""

    result = serializers.DictField(
        allow_null=True, read_only=True, help_text="What the processor returned when it completed the order, if any."
    )

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


# What a client polling an order's progress needs; the full order adds what the client sent.
STATUS_FIELDS = [
    "order_id",
    "status",
    "attempts",
    "failure_reason",
    "result",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
]


class OrderStatusOutputSerializer(OrderModelSerializer):
    """An order's progress."""

    class Meta:
        model = Order
        fields = read_only_fields = STATUS_FIELDS


class OrderOutputSerializer(OrderModelSerializer):
    """An order as the API shows it; total_amount is a JSON number with the exact stored decimal."""

    item_ids = serializers.ListField(child=serializers.IntegerField(min_value=1))
    total_amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)

    class Meta:
        model = Order
        fields = read_only_fields = ["order_id", "user_id", "item_ids", "total_amount", *STATUS_FIELDS[1:]]


class OrderListFilterSerializer(serializers.Serializer):
    """The order list's filters (the paginator reads cursor and page_size); a bad one is a 400 that names it."""

    status = serializers.ChoiceField(
        choices=Order.Status.choices, required=False, allow_blank=True, help_text="Empty: every status."
    )
    # As stored, whitespace included. No order has an empty user_id, so asking for one is a client's mistake (an
    # unset variable, say): a 400 says so, where an empty list would hide it.
    user_id = user_id_field(required=False, help_text="Exactly as the order was placed with, whitespace included.")


# One instance of each, reused: building a serializer's fields costs more than using them (docs/performance.md).
# Both calls below keep no state on the instance, so threads can share it.
_order_create_input = OrderCreateInputSerializer()
_user_order_create_input = UserOrderCreateInputSerializer()
_order_output = OrderOutputSerializer()


def order_create_input(data: dict, *, by_user: bool = False) -> dict:
    """A create request's validated fields; raises ValidationError with each bad field's errors, as is_valid() does.

    by_user: the caller sees only its own orders, so user_id may be left out.
    """
    return (_user_order_create_input if by_user else _order_create_input).run_validation(data)


def order_output(order: Order) -> dict:
    """One order as the API shows it."""
    return _order_output.to_representation(order)
