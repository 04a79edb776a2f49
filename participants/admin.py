from django.contrib import admin

from participants.models import Arm, ConsentDocument, EligibilityCriterion, Participant, Site, StaffMembership, Study


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "protocol_code", "blinded", "unblinded"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "time_zone"]


@admin.register(Arm)
class ArmAdmin(admin.ModelAdmin):
    list_display = ["study", "code", "label"]


@admin.register(EligibilityCriterion)
class CriterionAdmin(admin.ModelAdmin):
    list_display = ["study", "code", "kind", "text"]


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(admin.ModelAdmin):
    list_display = ["study", "version", "title", "published_at"]
    readonly_fields = ["published_at", "published_by"]

    def has_change_permission(self, request, obj=None):
        return False  # published consent versions are immutable; publish a new one through the service


@admin.register(StaffMembership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "site", "role", "granted_at"]

    def has_add_permission(self, request):
        return False  # role changes go through membership_grant / membership_revoke so they are audited

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    """Read-only here: every change to a participant goes through the audited services (the API)."""

    list_display = ["participant_id", "study", "site", "status", "needs_reconsent"]
    list_filter = ["study", "site", "status"]
    search_fields = ["participant_id"]
    exclude = []

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
