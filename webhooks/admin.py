"""Admin for webhook endpoints and their deliveries; a FAILED delivery can be redelivered from here."""

from django.contrib import admin

from order_system.admin_pages import ReadOnlyAdmin
from webhooks.models import Delivery, Endpoint
from webhooks.services import DeliveryNotFailed, EndpointNotDisabled, delivery_redeliver, endpoint_enable

# Shown once, by the API, to whoever made or rotated them.
SECRETS = ["secret", "previous_secret"]


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdmin):
    """Read-only, with an Enable action for disabled ones: endpoints are managed through the API, which shows a
    secret once."""

    list_display = ["url", "events", "description", "created_at", "failing_since", "disabled_at", "disabled_reason"]
    list_filter = ["disabled_at"]
    exclude = SECRETS
    readonly_fields = [field.name for field in Endpoint._meta.fields if field.name not in SECRETS]
    actions = ["enable"]

    def has_enable_permission(self, request) -> bool:
        """Enabling needs the change permission that editing itself never uses."""
        return request.user.has_perm("webhooks.change_endpoint")

    @admin.action(description="Enable selected disabled endpoints", permissions=["enable"])
    def enable(self, request, queryset):
        self.apply_to_each(
            request,
            queryset,
            endpoint_enable,
            skip=EndpointNotDisabled,
            noun="endpoint(s)",
            done="enabled",
            needed="disabled",
        )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """Read-only delivery browser with a Redeliver action for FAILED ones."""

    list_display = ["message_id", "event_type", "order_id", "endpoint", "status", "attempts", "created_at"]
    list_display += ["delivered_at", "last_status_code", "last_error"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["=message_id", "=order_id"]
    readonly_fields = [field.name for field in Delivery._meta.fields]
    show_full_result_count = False  # no second COUNT(*) over a large table on every search
    actions = ["redeliver"]

    def has_redeliver_permission(self, request) -> bool:
        """Redelivering needs the change permission that editing itself never uses."""
        return request.user.has_perm("webhooks.change_delivery")

    @admin.action(description="Redeliver selected FAILED deliveries", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        self.apply_to_each(
            request,
            queryset,
            delivery_redeliver,
            skip=DeliveryNotFailed,
            noun="delivery(ies)",
            done="redelivered",
            needed="FAILED",
        )
