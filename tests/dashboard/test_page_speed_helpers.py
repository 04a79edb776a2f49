"""The helpers that keep the staff pages fast at 10,000 participants give what Django's own would: the calendar's
long select writes the markup of Django's select templates, and a home list's one-query page is the page, number and
count ``Paginator.get_page`` gives, for any page asked for (past the end, below 1, not a number)."""

from __future__ import annotations

import pytest
from django import forms
from django.core.paginator import Paginator
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from dashboard import worklists
from dashboard.forms import LongSelect
from participants.models import Participant

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


@pytest.mark.parametrize("asked", [None, "1", "2", "3", "9", "0", "-1", "x", "", "2.0", " 2"])
@pytest.mark.django_db
def test_a_list_page_in_one_query_is_the_page_the_paginator_gives(asked, make_participant, monkeypatch):
    for _ in range(5):
        make_participant()
    monkeypatch.setattr(worklists, "PAGE_SIZE", 2)
    qs = Participant.objects.order_by("participant_id")
    query = QueryDict(mutable=True)
    if asked is not None:
        query["people-page"] = asked
    expected = Paginator(qs, 2).get_page(asked)
    with CaptureQueriesContext(connection) as captured:
        page = worklists._paged("people", qs, query)
        rows = [p.pk for p in page]
    assert (page.number, page.paginator.count, page.paginator.num_pages) == (
        expected.number,
        expected.paginator.count,
        expected.paginator.num_pages,
    )
    assert rows == [p.pk for p in expected]
    assert (page.has_next(), page.has_previous()) == (expected.has_next(), expected.has_previous())
    # One query for a page that exists (or the first page, for what is not a number); for a page past the end, that
    # query finds no rows and the paginator counts and reads the last page; below 1, the paginator alone.
    expected_queries = {"9": 3, "0": 2, "-1": 2}.get(asked, 1)
    assert len(captured) == expected_queries


@pytest.mark.django_db
def test_an_empty_list_costs_one_query_and_shows_its_first_page():
    qs = Participant.objects.order_by("participant_id")
    with CaptureQueriesContext(connection) as captured:
        page = worklists._paged("people", qs, QueryDict())
        assert list(page) == []
    assert len(captured) == 1
    assert page.number == 1 and page.paginator.count == 0 and not page.has_other_pages()
