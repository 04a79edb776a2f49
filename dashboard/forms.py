"""Forms of the staff pages. They parse input only; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
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


class LongSelect(forms.Select):
    """A select for lists of thousands of options (the calendar's dosing visits): the markup of Django's own
    select templates, written in Python (rendering a template per option costs a millisecond per hundred). Flat
    choices only; option groups fall back to the templates."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        context = self.get_context(name, value, attrs)["widget"]
        groups = context["optgroups"]
        if any(group_name for group_name, _choices, _index in groups):
            return super().render(name, value, attrs, renderer)
        options = "".join(
            f'\n  <option value="{conditional_escape(str(option["value"]))}"{_attrs(option["attrs"])}>'
            f"{conditional_escape(option['label'])}</option>\n"  # the option template's file ends with a newline
            for _group, choices, _index in groups
            for option in choices
        )
        return mark_safe(  # noqa: S308  # every part escaped above
            f'<select name="{conditional_escape(context["name"])}"{_attrs(context["attrs"])}>{options}\n</select>'
        )


def _attrs(attrs: dict[str, Any]) -> str:
    # django/forms/widgets/attrs.html
    return "".join(
        f" {conditional_escape(name)}"
        if value is True
        else f' {conditional_escape(name)}="{conditional_escape(str(value))}"'
        for name, value in attrs.items()
        if value is not False
    )
