"""Model validation turned into the domain's error, so a configuration service answers a 400 naming each field."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Model

from trialsite.errors import ServiceError


def _full_clean(instance: Model, what: str, *, exclude: Iterable[str] = ()) -> None:
    # Uniqueness is checked by the services themselves, with messages that name the study or site.
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise ServiceError(f"invalid {what}", field_errors=exc.message_dict) from None
