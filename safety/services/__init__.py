"""Every write to safety data: validated, atomic, audited in the same transaction; Celery work only on commit, by task
name. One module per noun: adverse_events (record, correct, follow up), reviews (investigator sign-off), alerting
(the investigators' alert and the medical monitor's escalation). Dosing records, vitals, medications and blinding
guesses come as modules of their own beside these.

Reads live in ``safety.selectors``; the AESI lists in ``safety.aesi``.
"""

from safety.services.adverse_events import adverse_event_correct, adverse_event_follow_up, adverse_event_record
from safety.services.alerting import (
    adverse_event_escalation_notify,
    adverse_event_notify,
    adverse_events_escalate_due,
)
from safety.services.guesses import guess_correct, guess_record
from safety.services.reviews import adverse_event_review

__all__ = [
    "adverse_event_correct",
    "adverse_event_escalation_notify",
    "adverse_event_follow_up",
    "adverse_event_notify",
    "adverse_event_record",
    "adverse_event_review",
    "adverse_events_escalate_due",
    "guess_correct",
    "guess_record",
]
