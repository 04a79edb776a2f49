"""What every channel takes and raises: the composed message, the ``commit`` it calls at its point of no return, and
the two ways an attempt can end without a delivery. Kept apart from the package's dispatcher so that the channel
modules import it without importing the dispatcher that imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    to: str
    subject: str
    body: str
    message_id: str  # stable per outbox row, so a duplicate (should one ever happen) is detectable downstream


class Superseded(Exception):
    """The row was re-claimed by another attempt or cancelled: this attempt sent nothing and must stop."""


class DeliveryError(Exception):
    """The provider refused the message or could not be reached."""


Commit = Callable[[], bool]
