"""ReadOnlyAdmin: the admin pages of rows that change only through their services, whose actions call them."""

from collections.abc import Callable

from django.contrib import admin, messages


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse rows; adding, editing or deleting one by hand would bypass the rules its services keep."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def apply_to_each(
        self, request, queryset, service: Callable, *, skip: type[Exception], noun: str, done: str, needed: str
    ) -> None:
        """Call service(<model>_id=pk) for each selected row; say how many it applied to, and how many it skipped
        because they raised skip."""
        applied = skipped = 0
        argument = f"{queryset.model._meta.model_name}_id"
        for pk in queryset.values_list("pk", flat=True):
            try:
                service(**{argument: pk})
                applied += 1
            except skip:
                skipped += 1
        self.message_user(request, f"{applied} {noun} {done}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} {noun} skipped: not {needed}.", messages.WARNING)
