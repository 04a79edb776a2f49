"""Searches of contact details (PHI): each one is recorded in the audit trail."""

from __future__ import annotations

from django.db import transaction

from audit.models import AuditEvent
from audit.services import audit_record
from participants import access
from participants.access import Actor
from participants.models import Study
from participants.selectors import CONTACT_SEARCH_KINDS
from trialsite.errors import PermissionDeniedError, ServiceError
from trialsite.roles import CONTACT


@transaction.atomic
def contact_search_record(*, study: Study, query_kind: str, result_count: int, by: Actor) -> list[AuditEvent]:
    """Record that ``by`` searched the study's participants by a contact detail. The row keeps the kind of detail
    searched (name, email or phone) and how many participants matched, never the text searched: a name, an address
    or a number typed into a search is itself PHI, and a hash of one is easily reversed by guessing."""
    if not access.site_ids_with(by, CONTACT):
        raise PermissionDeniedError("your role cannot search contact details")
    if query_kind not in CONTACT_SEARCH_KINDS:
        raise ServiceError(
            "unknown kind of contact search", field_errors={"query_kind": [f"one of {', '.join(CONTACT_SEARCH_KINDS)}"]}
        )
    if result_count < 0:
        raise ServiceError("a result count cannot be negative", field_errors={"result_count": ["0 or more"]})
    return audit_record(
        by=by,
        action=AuditEvent.Action.ACTION,
        entity_type="contact_search",
        entity_id=study.code,
        changes=[("query_kind", None, query_kind), ("result_count", None, result_count)],
        sensitivity=AuditEvent.Sensitivity.CONTACT,
    )
