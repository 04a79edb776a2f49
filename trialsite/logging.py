"""Log filters. Participant link tokens and calendar-feed secrets must never reach a log line (they are bearer
credentials)."""

import logging
import re

# Link paths carry the token as their last segment: /l/<token>/ and /api/v1/links/<token>/...; personal calendar
# feeds their secret: /calendar/feed/<secret>.ics.
_TOKEN_PATH = re.compile(r"(/(?:l|api/v1/links|calendar/feed)/)[A-Za-z0-9_\-]{16,}")


def redact(text: str) -> str:
    return _TOKEN_PATH.sub(r"\1[redacted]", text)


class RedactTokensFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
