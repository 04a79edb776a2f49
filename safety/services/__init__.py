"""Every write to safety data: validated, atomic, audited in the same transaction; Celery work only on commit, by task
name. One module per noun: adverse_events (record, correct, follow up), reviews (investigator sign-off), alerting
(the investigators' alert and the medical monitor's escalation), dosing (sessions, doses, vital signs, closing),
medications (concomitant medications, their stop, and the investigator's override of the dosing-booking check),
guesses (treatment guesses for the blinding report).

Reads live in ``safety.selectors``; the AESI lists in ``safety.aesi``.
"""

from safety.services.adverse_events import adverse_event_correct, adverse_event_follow_up, adverse_event_record
from safety.services.alerting import (
    adverse_event_escalation_notify,
    adverse_event_notify,
    adverse_events_escalate_due,
    adverse_events_notify_pending,
)
from safety.services.dosing import (
    dosing_doses_record,
    dosing_session_close,
    dosing_session_open,
    dosing_session_record,
    vital_sign_correct,
    vital_sign_record,
)
from safety.services.guesses import guess_correct, guess_record
from safety.services.medications import (
    medication_correct,
    medication_override_record,
    medication_record,
    medication_stop,
)
from safety.services.reviews import adverse_event_review

__all__ = [
    "adverse_event_correct",
    "adverse_event_escalation_notify",
    "adverse_event_follow_up",
    "adverse_event_notify",
    "adverse_event_record",
    "adverse_event_review",
    "adverse_events_escalate_due",
    "adverse_events_notify_pending",
    "dosing_doses_record",
    "dosing_session_close",
    "dosing_session_open",
    "dosing_session_record",
    "vital_sign_correct",
    "vital_sign_record",
    "medication_correct",
    "medication_override_record",
    "medication_record",
    "medication_stop",
    "guess_correct",
    "guess_record",
]
