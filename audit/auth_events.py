"""Staff log-ins, failed log-ins and log-outs go to the audit trail (signals are used here because Django's
authentication emits them; domain writes never rely on signals)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(by=user, action="login", entity_type="user", entity_id=user.pk)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        audit_record(by=user, action="logout", entity_type="user", entity_id=user.pk)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the attempted user name is kept; Django already strips the password from ``credentials``.
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        audit_record(by=None, action="login_failed", entity_type="user", entity_id=username, actor_username=username)
