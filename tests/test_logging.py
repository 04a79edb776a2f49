"""Participant link tokens never reach a log line, whichever logger writes the request path."""

from __future__ import annotations

import logging

import pytest

from trialsite.apps import TOKEN_PATH_LOGGERS

TOKEN = "Zq3x9VbN2kLm8PwR4tYh6JcD1sFg7AeU0oIi5nMb"


class Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("name", TOKEN_PATH_LOGGERS)
def test_request_path_loggers_redact_link_tokens(name):
    logger = logging.getLogger(name)
    keep = Keep()
    logger.addHandler(keep)
    try:
        # The shape of gunicorn's access line (a format with a dict of atoms) and of Django's "Not Found: %s".
        logger.warning('%(h)s "%(r)s" %(s)s', {"h": "203.0.113.9", "r": f"GET /l/{TOKEN}/ HTTP/1.1", "s": "302"})
        logger.warning("Not Found: %s", f"/api/v1/links/{TOKEN}/submit/")
        logger.warning("Not Found: %s", f"/calendar/feed/{TOKEN}.ics")
    finally:
        logger.removeHandler(keep)
    assert keep.lines == [
        '203.0.113.9 "GET /l/[redacted]/ HTTP/1.1" 302',
        "Not Found: /api/v1/links/[redacted]/submit/",
        "Not Found: /calendar/feed/[redacted].ics",
    ]
