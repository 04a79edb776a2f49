"""Private helper: the user row to store as "who did it" on a record."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from participants.access import Actor


def _user_or_none(by: Actor) -> User | None:
    """The acting user, or None for the system (a command, a task, the demo seed) and for an anonymous caller."""
    user_model = get_user_model()
    return by if isinstance(by, user_model) and by.pk is not None else None
