"""The periodic schedule (one beat process per deployment) and the queue routing.

Queues in priority order: ``safety`` (alerts to investigators), ``reminders`` (the outbox), ``default``. Workers
consume ``-Q safety,reminders,default``; a deployment can dedicate workers to ``safety``.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "safety-alerts-escalate": {
        "task": "assessments.safety_alerts_escalate",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "safety", "expires": 240},
    },
    # The sweep for alert mail whose task never reached the broker (published after commit; Redis was down).
    "safety-alerts-notify-pending": {
        "task": "assessments.safety_alerts_notify_pending",
        "schedule": crontab(),
        "options": {"queue": "safety", "expires": 50},
    },
    "safety-adverse-events-escalate": {
        "task": "safety.adverse_events_escalate",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "safety", "expires": 240},
    },
    "safety-adverse-events-notify-pending": {
        "task": "safety.adverse_events_notify_pending",
        "schedule": crontab(),
        "options": {"queue": "safety", "expires": 50},
    },
    # The reminder outbox (notifications): claim due rows every minute; re-plan every participant every 5 minutes as
    # the safety net for a "reconcile this participant" hook that never reached the broker. Expiry below the period:
    # a tick that waited out a Redis outage is dropped rather than stacked (the next one does the same work).
    "notifications-dispatch-due": {
        "task": "notifications.dispatch_due",
        "schedule": crontab(),
        "options": {"queue": "reminders", "expires": 50},
    },
    "notifications-reconcile-all": {
        "task": "notifications.reconcile_all",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "reminders", "expires": 240},
    },
    # Audit rows are chained after commit by their writer (audit/sequencer.py); this catches what a dead process left.
    "audit-chain-pending": {
        "task": "audit.chain_pending",
        "schedule": crontab(),
        "options": {"queue": "default", "expires": 50},
    },
    # Signed checkpoints of the audit chain's head, outside the database (audit/checkpoints.py): rows cut from the
    # chain's tail after a checkpoint are caught by audit_verify.
    "audit-checkpoint": {
        "task": "audit.checkpoint",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "default", "expires": 540},
    },
}

TASK_ROUTES = {
    "assessments.safety_*": {"queue": "safety"},
    "safety.*": {"queue": "safety"},
    "notifications.*": {"queue": "reminders"},
}
