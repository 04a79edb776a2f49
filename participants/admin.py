"""Read-only admin pages: studies, sites, arms, criteria, consent versions, roles, participants and unblinding
approvals change only through the services (participants.services), which check the role and write the audit row.

Staff accounts keep Django's user admin with its privileges taken out: the superuser, staff and active flags, the
groups (the roles' mirror) and model permissions are shown read-only, and change only through the audited
``manage.py staff_account`` (``services.staff_account_flags_set``) and the role services. An account made or edited
here (its name, e-mail) is saved through ``services.staff_account_save``, audited; none is deleted here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Model
from django.http import HttpRequest

from participants.models import (
    Arm,
    ConsentDocument,
    EligibilityCriterion,
    Participant,
    Site,
    StaffMembership,
    Study,
    UnblindingApproval,
)
from participants.services import accounts
from trialsite.admin import ReadOnlyAdmin, link_to

if TYPE_CHECKING:
    _UserAdmin = UserAdmin[Any]
else:
    _UserAdmin = UserAdmin

# Shown on an account's page, never editable there.
PRIVILEGE_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions", "last_login", "date_joined")


class StaffAccountAdmin(_UserAdmin):
    """Django's user admin without the privileges: see the module's docstring."""

    readonly_fields = PRIVILEGE_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return PRIVILEGE_FIELDS if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        accounts.staff_account_save(user=obj, by=request.user)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Groups and permissions are read-only here; nothing related is saved from this form.
        return None


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffAccountAdmin)


# Groups mirror the roles (granted and revoked, audited, by the membership services); their permissions do not
# change here either.
admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(ReadOnlyAdmin):
    list_display = ["name"]


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "title",
        "protocol_code",
        "target_enrollment",
        "blinded",
        "unblinded",
        "medical_monitor_email",
    ]
    search_fields = ["code", "title"]


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "time_zone"]
    list_filter = ["studies"]
    search_fields = ["code", "name"]


@admin.register(Arm)
class ArmAdmin(ReadOnlyAdmin):
    list_display = [link_to("study"), "code", "label"]
    list_filter = ["study"]
    list_select_related = ["study"]


@admin.register(EligibilityCriterion)
class CriterionAdmin(ReadOnlyAdmin):
    list_display = [link_to("study"), "code", "kind", "text", "order", "retired_at"]
    list_filter = ["study", "kind"]
    list_select_related = ["study"]
    search_fields = ["code", "text"]


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(ReadOnlyAdmin):
    list_display = [link_to("study"), "version", "title", "published_at", "published_by"]
    list_filter = ["study"]
    list_select_related = ["study", "published_by"]


@admin.register(StaffMembership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", link_to("site"), "role", "granted_at"]
    list_filter = ["role", "site"]
    list_select_related = ["user", "site"]
    search_fields = ["user__username"]


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ["participant_id", link_to("study"), link_to("site"), "status", "needs_reconsent"]
    list_filter = ["study", "site", "status"]
    list_select_related = ["study", "site"]
    search_fields = ["participant_id"]


@admin.register(UnblindingApproval)
class UnblindingApprovalAdmin(ReadOnlyAdmin):
    list_display = [link_to("study"), "approved_by", "approved_at", "withdrawn_at", "unblinded_at"]
    list_filter = ["study"]
    list_select_related = ["study", "approved_by"]
