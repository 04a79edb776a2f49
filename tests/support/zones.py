"""Time zones for tests that run real processes against the wall clock (a worker cannot have its clock moved)."""

from __future__ import annotations

import datetime as dt


def daytime_zone(now: dt.datetime | None = None) -> str:
    """A fixed-offset zone in which it is about noon right now, so quiet hours never hold back a message that a test
    with a real worker waits for, whatever the hour the suite runs at."""
    now = now or dt.datetime.now(dt.UTC)
    offset = (12 - now.hour) % 24
    if offset > 12:
        offset -= 24
    # The Etc/GMT names invert the sign: UTC+3 is "Etc/GMT-3".
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
