"""The account behind ``by`` for a "who did it" column of an assessments row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

from participants.access import Actor

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def account_of(by: Actor) -> User | None:
    """None for the system (a command, a task) and for an anonymous request: the audit row names them instead."""
    user_model = get_user_model()
    return by if isinstance(by, user_model) and by.pk is not None else None
