"""Input and output shapes of the webhooks API; field rules only, no behaviour."""

from rest_framework import serializers

from orders.serializers import StrictCharField, UTCDateTimeField
from webhooks.models import ALL_EVENTS, EVENT_TYPES, Endpoint


class EndpointCreateInputSerializer(serializers.Serializer):
    """What a client sends to register an endpoint."""

    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[*EVENT_TYPES, ALL_EVENTS]),
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        help_text=f'Event types, or ["{ALL_EVENTS}"] for all of them.',
    )
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


class EndpointOutputSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it, without its secret; disabled_at and disabled_reason say if it was disabled."""

    created_at = UTCDateTimeField(read_only=True)
    disabled_at = UTCDateTimeField(read_only=True, allow_null=True)
    previous_secret_expires_at = UTCDateTimeField(
        read_only=True, allow_null=True, help_text="After a rotation, until when the old secret also signs."
    )
    events = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Endpoint
        fields = read_only_fields = [
            "id",
            "url",
            "events",
            "description",
            "created_at",
            "disabled_at",
            "disabled_reason",
            "previous_secret_expires_at",
        ]


class EndpointSecretOutputSerializer(EndpointOutputSerializer):
    """An endpoint with its signing secret: shown only when it is made or rotated."""

    class Meta(EndpointOutputSerializer.Meta):
        fields = read_only_fields = [*EndpointOutputSerializer.Meta.fields, "secret"]
