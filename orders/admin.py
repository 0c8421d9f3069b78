"""Admin for browsing orders; status changes stay in orders.services."""

from django.contrib import admin

from orders.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Read-only order browser: adding or editing here would bypass the queue and the status rules."""

    list_display = ["order_id", "user_id", "status", "total_amount", "attempts", "created_at", "completed_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["=order_id", "=user_id"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in Order._meta.fields]
    show_full_result_count = False  # no second COUNT(*) over a million rows on every search

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
