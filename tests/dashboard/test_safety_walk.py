"""Safety data, walked: the world's blinded study hides safety data from its independent raters, so every GET page
of the registry, fetched by the rater, holds none of the world's safety records (adverse events, medications, dosing
sessions and their vital signs), whatever page it is: the log, a participant's page, the history, the calendar. The
same walk as the investigator finds each of them, so the scan can fail. (Arms are the blinding walk's concern.)"""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from tests.dashboard.pages import get_urls
from tests.dashboard.world import NOW, World
from trialsite.roles import Role

pytestmark = pytest.mark.django_db


def sentinels(world: World) -> dict[str, str]:
    """A string unique to each kind of safety record of the world, as the pages would show it."""
    found = {}
    for code, objects in world.sites.items():
        if objects.adverse_event is not None:
            found[f"adverse event at {code}"] = objects.adverse_event.verbatim_term
        if objects.medication is not None:
            found[f"medication at {code}"] = objects.medication.name
        session = getattr(objects, "dosing_session", None)
        if session is not None and session.kit_identifier:
            found[f"dosing session at {code}"] = session.kit_identifier
    return found


def walk(world: World, role: str) -> dict[str, list[str]]:
    client = Client()
    strings = sentinels(world)
    out = {}
    with time_machine.travel(NOW, tick=False):
        client.force_login(world.users[role])
        for _name, url in get_urls(world):
            body = client.get(url).content.decode()
            hits = [kind for kind, text in strings.items() if text in body]
            if hits:
                out[url] = hits
    return out


def test_a_rater_sees_no_safety_record_on_any_page(world):
    assert world.study.hides_safety_from_raters
    assert {"adverse event at PDX", "medication at PDX"} <= set(sentinels(world))
    leaks = walk(world, Role.RATER.value)
    assert not leaks, leaks


def test_the_investigator_sees_every_safety_record(world):
    seen = {kind for hits in walk(world, Role.INVESTIGATOR.value).values() for kind in hits}
    assert set(sentinels(world)) <= seen, set(sentinels(world)) - seen
