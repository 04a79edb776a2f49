"""What a reminder says: its stable Message-ID and its rendered subject and body.

Pure: no database and no clock. The sender passes in the address and everything the template shows (a participant
link included, issued beforehand by its own step), so composing a message never writes or issues anything.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from collections.abc import Mapping
from contextlib import nullcontext
from typing import TYPE_CHECKING

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from notifications.channels.contract import Outgoing

if TYPE_CHECKING:
    from notifications.models import Notification


def message_id(row: Notification) -> str:
    """Stable per outbox row, so a duplicate (should one ever happen) is detectable downstream."""
    domain = (settings.DEFAULT_FROM_EMAIL or "").rsplit("@", 1)[-1].strip("> ") or "trialsite.invalid"
    digest = hashlib.sha256(row.key.encode()).hexdigest()[:20]
    return f"<notification-{row.pk}-{digest}@{domain}>"


def _render(row: Notification, name: str, context: Mapping[str, object]) -> str:
    with translation.override(row.language):
        return render_to_string(f"notifications/{row.language}/{name}", dict(context)).strip()


def compose(row: Notification, *, to: str, context: Mapping[str, object], time_zone: str | None) -> Outgoing:
    """The message for ``row`` in its language and channel. Times in ``context`` show in ``time_zone`` (the
    participant's; None for a staff message, which shows none). Participant messages say only what the participant
    needs: no visit name, no instrument name, nothing clinical (they may be read on a lock screen)."""
    body_name = f"{row.template}.sms.txt" if row.channel == "sms" else f"{row.template}.txt"
    with timezone.override(zoneinfo.ZoneInfo(time_zone)) if time_zone else nullcontext():
        return Outgoing(
            to=to,
            subject=_render(row, f"{row.template}_subject.txt", context),
            body=_render(row, body_name, context),
            message_id=message_id(row),
        )
