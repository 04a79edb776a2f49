"""Every write to assessments: validated, atomic, audited in the same transaction; Celery work only on commit, by
task name. One module per noun: library (instrument versions), texts (text packs), administrations, links, responses,
safety.

Reads live in ``assessments.selectors`` (scoped reads, participant links), ``assessments.library`` (instrument
definitions) and ``assessments.windows`` (windows and the status the clock gives an administration).
"""

from assessments.services.administrations import (
    administration_add,
    administration_open_early,
    administrations_close_for_withdrawal,
    administrations_follow_visits,
)
from assessments.services.library import instrument_version_load
from assessments.services.links import (
    link_issue,
    link_issue_in_clinic,
    link_save_answers,
    link_submit,
    links_revoke_for_participant,
)
from assessments.services.responses import response_correct, response_create_staff, response_store, responses_rescore
from assessments.services.safety import (
    safety_alert_acknowledge,
    safety_alert_escalation_notify,
    safety_alert_notify,
    safety_alert_raise_for,
    safety_alerts_escalate_due,
    safety_alerts_notify_pending,
    safety_alerts_raise,
)
from assessments.services.texts import instrument_text_load

__all__ = [
    "administration_add",
    "administration_open_early",
    "administrations_close_for_withdrawal",
    "administrations_follow_visits",
    "instrument_text_load",
    "instrument_version_load",
    "link_issue",
    "link_issue_in_clinic",
    "link_save_answers",
    "link_submit",
    "links_revoke_for_participant",
    "response_correct",
    "response_create_staff",
    "response_store",
    "responses_rescore",
    "safety_alert_acknowledge",
    "safety_alert_escalation_notify",
    "safety_alert_notify",
    "safety_alerts_notify_pending",
    "safety_alert_raise_for",
    "safety_alerts_escalate_due",
    "safety_alerts_raise",
]
