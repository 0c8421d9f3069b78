"""Admin for browsing orders; status changes go through orders.services, as from the API."""

from django.contrib import admin

from order_system.admin_pages import ReadOnlyAdmin
from orders.models import Order
from orders.services import OrderNotInStatus, order_cancel, order_retry


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Read-only order browser with Retry and Cancel actions; editing here would bypass the status rules."""

    list_display = ["order_id", "user_id", "status", "total_amount", "attempts", "created_at", "completed_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=order_id", "=user_id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Order._meta.fields]
    show_full_result_count = False  # no second COUNT(*) over a million rows on every search
    actions = ["retry_orders", "cancel_orders"]

    def has_process_permission(self, request) -> bool:
        """Retry and Cancel need the change permission that editing itself never uses."""
        return request.user.has_perm("orders.change_order")

    @admin.action(description="Retry selected FAILED orders", permissions=["process"])
    def retry_orders(self, request, queryset):
        self.apply_to_each(
            request,
            queryset,
            order_retry,
            skip=OrderNotInStatus,
            noun="order(s)",
            done="retried",
            needed="FAILED",
        )

    @admin.action(description="Cancel selected PENDING orders", permissions=["process"])
    def cancel_orders(self, request, queryset):
        self.apply_to_each(
            request,
            queryset,
            order_cancel,
            skip=OrderNotInStatus,
            noun="order(s)",
            done="cancelled",
            needed="PENDING",
        )
