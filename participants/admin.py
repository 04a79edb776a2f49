"""Read-only admin pages: studies, sites, arms, criteria, consent versions, roles and participants change only
through the services (participants.services), which check the role and write the audit row."""

from django.contrib import admin

from participants.models import Arm, ConsentDocument, EligibilityCriterion, Participant, Site, StaffMembership, Study
from trialsite.admin import ReadOnlyAdmin, link_to


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
