"""Fixtures for the notification tests: a real SMTP server on loopback (aiosmtpd), a fake SMS provider speaking the
provider's REST shape, and helpers that run the dispatcher and the send step in-process under a travelled clock."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications import services
from notifications.channels import email as email_channel
from tests.support.smtp import free_port  # noqa: E402,F401  (re-exported for the notification tests)


@pytest.fixture
def smtp_server(smtp_recorder):
    return smtp_recorder


@pytest.fixture
def smtp(smtp_server, settings):
    """Django's SMTP backend pointed at the loopback server."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield smtp_server
    email_channel.drop()


class FakeProvider(BaseHTTPRequestHandler):
    """``POST /2010-04-01/Accounts/{sid}/Messages.json`` with form fields To, From, Body and basic auth."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        server = self.server
        server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "form": form})
        status, payload = (201, {"sid": f"SM{len(server.requests):032d}", "status": "queued"})
        if server.refuse:
            status, payload = 400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def sms_provider(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
    server.requests, server.refuse = [], False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_URL = f"twilio+http://AC123:secret@127.0.0.1:{server.server_port}?from=%2B15550001111"
    yield server
    server.shutdown()
    server.server_close()


def deliver_due() -> list[str]:
    """One beat tick in-process: claim what is due now and run each send right here (the worker's job)."""
    return [
        services.notification_send(notification_id=pk, claim_token=token)
        for pk, token in services.notifications_claim_due()
    ]


def complete_answers(code: str) -> dict:
    from assessments.definitions import visible_items
    from assessments.library import instrument_get

    instrument = instrument_get(code)
    answers: dict = {}
    for item in instrument.items:
        answers[item.code] = item.values[0]
    shown = {i.code for i in visible_items(instrument, answers)}
    return {k: v for k, v in answers.items() if k in shown}


@pytest.fixture(autouse=True)
def _quiet_smtp_log():
    import logging

    logging.getLogger("mail.log").setLevel(logging.WARNING)
