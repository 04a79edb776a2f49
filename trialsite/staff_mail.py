"""Mail to staff, each reader in the language they chose (participants.StaffProfile): one message per language."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation


def send_in_each_language(compose: Callable[[], tuple[str, str]], recipients: Mapping[str, Sequence[str]]) -> int:
    """Send the message ``compose`` writes (subject, body; in the active language) to ``recipients`` (addresses by
    language), composed once per language. Raises on a failed send, so a caller can release its claim and retry.
    Returns the number of messages sent."""
    sent = 0
    for language, emails in recipients.items():
        with translation.override(language):
            subject, body = compose()
        sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, list(emails), fail_silently=False)
    return sent
