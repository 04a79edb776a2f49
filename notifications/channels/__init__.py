"""Delivery channels. Each one sends a composed message and calls ``commit`` at its point of no return.

``commit()`` marks the outbox row sent (a conditional UPDATE on the attempt's claim token) and returns False when the
row no longer belongs to this attempt. A channel calls it after everything that can be abandoned without effect and
before the one step that makes the message irrevocable: the final "." of SMTP DATA, or the HTTP request to the SMS
provider. So a worker killed before that step leaves a row that is safe to send again, and one killed after it leaves a
row already marked sent. See docs/operations.md, "Reminders: delivery guarantees".

``choose_channel`` picks a participant's channel: the preferred one if it has an address, else the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from notifications.channels.contract import Commit, DeliveryError, Outgoing, Superseded

if TYPE_CHECKING:
    from participants.models import ContactDetails

__all__ = ["Commit", "DeliveryError", "Outgoing", "Superseded", "choose_channel", "deliver"]


def choose_channel(contact: ContactDetails | None) -> str | None:
    """The preferred channel when it has an address, else the other one; None when the participant has neither."""
    if contact is None:
        return None
    addresses = {"email": bool(contact.email), "sms": bool(contact.phone)}
    preferred = contact.preferred_channel or "email"
    if addresses.get(preferred):
        return preferred
    return next((c for c in ("email", "sms") if addresses[c]), None)


def deliver(channel: str, message: Outgoing, commit: Commit) -> str:
    """Send ``message`` through ``channel``; returns the provider's message id (may be empty)."""
    if channel == "sms":
        from notifications.channels import sms

        return sms.deliver(message, commit)
    from notifications.channels import email

    return email.deliver(message, commit)
