"""Admin for browsing orders; status changes go through orders.services, as from the API."""

from django.contrib import admin, messages

from orders.models import Order
from orders.services import OrderNotInStatus, order_cancel, order_retry


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only order browser with Retry and Cancel actions; editing here would bypass the status rules."""

    list_display = ["order_id", "user_id", "status", "total_amount", "attempts", "created_at", "completed_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=order_id", "=user_id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Order._meta.fields]
    show_full_result_count = False  # no second COUNT(*) over a million rows on every search
    actions = ["retry_orders", "cancel_orders"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_process_permission(self, request) -> bool:
        """Retry and Cancel need the change permission that editing itself never uses."""
        return request.user.has_perm("orders.change_order")

    @admin.action(description="Retry selected FAILED orders", permissions=["process"])
    def retry_orders(self, request, queryset):
        self._apply(request, queryset, order_retry, "retried", "FAILED")

    @admin.action(description="Cancel selected PENDING orders", permissions=["process"])
    def cancel_orders(self, request, queryset):
        self._apply(request, queryset, order_cancel, "cancelled", "PENDING")

    def _apply(self, request, queryset, service, done: str, needed: str) -> None:
        """Run a service per order and say how many it applied to and how many it skipped."""
        applied = skipped = 0
        for order_id in queryset.values_list("pk", flat=True):
            try:
                service(order_id=order_id)
                applied += 1
            except OrderNotInStatus:
                skipped += 1
        self.message_user(request, f"{applied} order(s) {done}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} order(s) skipped: not {needed}.", messages.WARNING)
