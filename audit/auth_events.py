"""Staff log-ins, failed log-ins and log-outs go to the audit trail (signals are used here because Django's
authentication emits them; domain writes never rely on signals)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest

from audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    with transaction.atomic():
        audit_record(by=user, action="login", entity_type="user", entity_id=user.pk)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: AbstractBaseUser | None, **kwargs: Any) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit_record(by=user, action="logout", entity_type="user", entity_id=user.pk)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Only the attempted user name is kept; Django already strips the password from ``credentials``.
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        audit_record(by=None, action="login_failed", entity_type="user", entity_id=username, actor_username=username)


@receiver(user_locked_out, dispatch_uid="audit_lockout")
def _locked_out(sender: Any, request: HttpRequest, username: str | None = None, **kwargs: Any) -> None:
    # Sent when wrong passwords lock an account, and again on each attempt refused while it is locked (each of those
    # is already a failed log-in above). Only the locking is recorded here: the handler then carries the count.
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        return
    name = str(username or "")[:150]
    with transaction.atomic():
        audit_record(
            by=None,
            action="login_failed",
            entity_type="lockout",
            entity_id=name,
            changes=[("failures", None, int(failures))],
            actor_username=name,
        )
