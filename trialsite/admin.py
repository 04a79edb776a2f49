"""The one base for every trial model's admin: it shows and links, and never writes.

Every change to trial data goes through the services (role check, reason, audit row in the same transaction), so the
Django admin is a window, not a second door: no add, change or delete, no bulk delete, no list editing. A superuser
still browses every table, follows links between related records and searches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


def admin_url(obj: Model) -> str | None:
    """The admin page of ``obj``, or None when its model has no admin."""
    meta = obj._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return None


def link_to(field: str, description: str | None = None) -> Callable[[Model], SafeString | str]:
    """A list column showing the related record ``field`` as a link to its own admin page."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj: Model) -> SafeString | str:
        target = getattr(obj, field)
        if target is None:
            return "-"
        url = admin_url(target)
        return format_html('<a href="{}">{}</a>', url, target) if url else str(target)

    column.__name__ = f"{field}_link"
    return column


class ReadOnlyAdmin(_ModelAdmin):
    """Shows a trial model; never adds, changes or deletes one (the services do, audited)."""

    view_on_site = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # A POST to the list only runs an action this admin offers (e.g. notifications' audited retry); bulk delete
        # and list editing are refused outright instead of re-rendering the page.
        if request.method == "POST" and request.POST.get("action") not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)
