"""Screens of a questionnaire: a long instrument is shown to a participant a few items at a time.

A phone shows about eight questions before scrolling turns into searching, so an instrument is cut into screens of at
most ``MAX_ITEMS_PER_SCREEN`` items. The cut is derived from the instrument's data, never written per instrument:

- items that share a ``group`` (LSAS-SR: the fear and the avoidance rating of one situation) stay on one screen, since
  the pair is rated together and a situation split across screens would be answered out of its context;
- an item shown only after an earlier answer (``show_if``) stays on the screen of the item it depends on, together with
  every item between the two, so the page can show or hide it as that answer changes;
- the screens are balanced: as few screens as the limit allows, with their sizes as even as the groups permit (26 items
  give 7 + 7 + 7 + 5, not 8 + 8 + 8 + 2).

A group larger than the limit is never split: it gets a screen of its own. The screens depend on the definition only,
not on the answers, so a screen's address always shows the same questions.

Pure Python: no database, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence
from typing import Any

from assessments.definitions import Instrument, Item, visible_items

MAX_ITEMS_PER_SCREEN = 8

Screen = tuple[Item, ...]


def item_units(items: Sequence[Item]) -> list[tuple[Item, ...]]:
    """The items cut into the smallest runs that must stay on one screen, in order."""
    index = {item.code: i for i, item in enumerate(items)}
    # joined[i]: item i must be on the same screen as item i - 1.
    joined = [False] * len(items)
    for i, item in enumerate(items):
        if i and item.group is not None and item.group == items[i - 1].group:
            joined[i] = True
        parent = index.get(item.show_if.item) if item.show_if is not None else None
        if parent is not None and parent < i:
            for j in range(parent + 1, i + 1):
                joined[j] = True
    units: list[list[Item]] = []
    for i, item in enumerate(items):
        if joined[i] and units:
            units[-1].append(item)
        else:
            units.append([item])
    return [tuple(unit) for unit in units]


def _pack(units: Sequence[tuple[Item, ...]], limit: int) -> list[Screen]:
    """Fill screens in order, starting a new one when the next unit would pass ``limit``."""
    screens: list[list[Item]] = []
    for unit in units:
        if screens and len(screens[-1]) + len(unit) <= limit:
            screens[-1].extend(unit)
        else:
            screens.append(list(unit))
    return [tuple(screen) for screen in screens]


def paginate(items: Sequence[Item], max_items: int = MAX_ITEMS_PER_SCREEN) -> list[Screen]:
    """The items in screens of at most ``max_items`` (a unit larger than that has a screen of its own), in order,
    every item exactly once. An empty instrument has no screen."""
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    units = item_units(items)
    fewest = _pack(units, max_items)
    # The fewest screens the limit allows; then the smallest limit that still needs no more screens than that, so the
    # last screen is not left with a remainder of one or two questions.
    target = math.ceil(len(items) / len(fewest)) if fewest else max_items
    for limit in range(min(target, max_items), max_items + 1):
        screens = _pack(units, limit)
        if len(screens) <= len(fewest):
            return screens
    return fewest


def instrument_screens(instrument: Instrument) -> list[Screen]:
    """The screens a participant answers ``instrument`` in."""
    return paginate(instrument.items)


def screen_of(screens: Sequence[Screen], code: str) -> int:
    """The 1-based number of the screen that shows item ``code``; 1 for a code on no screen."""
    for number, screen in enumerate(screens, start=1):
        if any(item.code == code for item in screen):
            return number
    return 1


def answered_of(
    instrument: Instrument, answers: Mapping[str, Any], codes: Container[str] | None = None
) -> tuple[int, int]:
    """Questions answered and questions asked in ``instrument`` given ``answers`` (of the items in ``codes``, or all):
    a question hidden by branching is not asked, so it counts in neither."""
    shown = [it for it in visible_items(instrument, answers) if codes is None or it.code in codes]
    return sum(1 for it in shown if answers.get(it.code) is not None), len(shown)
