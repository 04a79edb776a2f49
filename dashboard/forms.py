"""Forms of the staff pages. They parse input only; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from participants import access


def holds_a_site_role(user: Any) -> bool:
    """Anyone with a role at a site signs in, staff flag or not; a superuser everywhere."""
    return access.is_superuser(user) or bool(access.site_ids_for(user))


class StaffLoginForm(AuthenticationForm):
    """Username and password. An account with no role at any site has nothing to see here, so it is refused with a
    message that says so (its password was right, so no failed log-in is recorded)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "no_role": _("This account holds no role at any study site. Ask an administrator for one."),
    }

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not holds_a_site_role(user):
            raise ValidationError(self.error_messages["no_role"], code="no_role")


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
