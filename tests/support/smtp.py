"""A real SMTP server on loopback (aiosmtpd) that records what it accepts; ``refuse`` makes it answer the end of
DATA with that reply instead."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import threading
from dataclasses import dataclass


@dataclass
class Received:
    at: dt.datetime
    to: list[str]
    message_id: str
    subject: str
    body: str


class Recorder:
    """An SMTP handler that keeps what it accepts; ``refuse`` makes it answer the end of DATA with that reply."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse: str | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return self.refuse
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(("plain",))
        with self.lock:
            self.messages.append(
                Received(
                    at=dt.datetime.now(dt.UTC),
                    to=list(envelope.rcpt_tos),
                    message_id=str(msg["Message-ID"]),
                    subject=str(msg["Subject"]),
                    body=body.get_content() if body else "",
                )
            )
        return "250 2.0.0 Ok: queued"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
