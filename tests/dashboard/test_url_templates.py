"""Row links built from route templates (dashboard/url_templates.py) are exactly what ``reverse`` gives."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse, set_script_prefix

from dashboard.url_templates import url_for


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("dashboard-participant", ("SAM-PDX-001",)),
        ("dashboard-participant", ("a b?c#d%e&f",)),  # quoted as reverse quotes it
        ("dashboard-participant", ("ñandú:@~",)),
        ("dashboard-link-send", (7,)),
        ("dashboard-alert-acknowledge", (123456,)),
        ("dashboard-notification-retry", (1,)),
    ],
)
def test_same_as_reverse(name, args):
    assert url_for(name, *args) == reverse(name, args=args)


def test_script_prefix_is_kept():
    set_script_prefix("/trials/")
    try:
        assert url_for("dashboard-link-send", 5) == reverse("dashboard-link-send", args=[5]) == "/trials/visits/5/link/"
    finally:
        set_script_prefix("/")
    assert url_for("dashboard-link-send", 5) == "/visits/5/link/"


@pytest.mark.parametrize("bad", ["", "a/b"])
def test_what_reverse_refuses_is_refused(bad):
    with pytest.raises(NoReverseMatch):
        url_for("dashboard-participant", bad)
