"""The helpers that keep the staff pages fast at 10,000 participants give what Django's own would: the calendar's
long select writes the markup of Django's select templates."""

from __future__ import annotations

import pytest
from django import forms

from dashboard.forms import LongSelect

CHOICES = [("", "Choose a visit"), ("1", "SAM-PDX-00001 · DOSE1 · window <a> & “b”"), ("22", "x")]


class Plain(forms.Form):
    visit = forms.ChoiceField(choices=CHOICES)


class Long(forms.Form):
    visit = forms.ChoiceField(choices=CHOICES, widget=LongSelect)


@pytest.mark.parametrize("data", [None, {"visit": "22"}, {"visit": "nope"}, {"visit": ""}])
def test_the_long_select_writes_what_the_select_template_writes(data):
    plain, long = Plain(data), Long(data)
    if data is not None:
        assert plain.is_valid() == long.is_valid()
    assert str(long["visit"]) == str(plain["visit"])
    assert "&lt;a&gt; &amp; “b”" in str(long["visit"])
    if data == {"visit": "22"}:
        assert '<option value="22" selected>x</option>' in str(long["visit"])
