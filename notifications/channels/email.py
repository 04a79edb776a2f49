"""E-mail through Django's e-mail backend (EMAIL_URL).

With the SMTP backend the message goes out in two phases on the backend's own connection: envelope and content first,
then ``commit()``, then the final "." that makes the server accept it. A server discards a message whose DATA never
ended, so an attempt that dies before the "." has sent nothing. Other backends (console, locmem) commit, then send.

The connection is kept open per worker process and reused (a reminder batch would otherwise pay a TCP and EHLO round
trip per message); a broken connection is dropped and reopened, and retried once when nothing was sent yet.
"""

from __future__ import annotations

import re
import smtplib
import socket
import threading
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from notifications.channels.contract import Commit, DeliveryError, Outgoing, Superseded

_local = threading.local()


def _backend_key() -> tuple[Any, ...]:
    return (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def _backend() -> Any:
    key = _backend_key()
    cached = getattr(_local, "backend", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    drop()
    backend = get_connection(fail_silently=False)
    _local.backend = (key, backend)
    return backend


def drop() -> None:
    """Forget the cached connection without a polite QUIT: after an error its state is unknown, and an unfinished
    DATA must be abandoned, never completed."""
    cached = getattr(_local, "backend", None)
    _local.backend = None
    if cached is not None and isinstance(cached[1], SMTPBackend) and cached[1].connection is not None:
        try:
            cached[1].connection.close()
        except OSError:
            pass
        cached[1].connection = None


def _email(message: Outgoing) -> EmailMessage:
    return EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        headers={"Message-ID": message.message_id},
    )


def deliver(message: Outgoing, commit: Commit) -> str:
    email = _email(message)
    backend = _backend()
    if not isinstance(backend, SMTPBackend):
        if not commit():
            raise Superseded
        backend.send_messages([email])
        return ""
    for attempt in (1, 2):
        try:
            return _smtp_two_phase(backend, email, commit)
        except _Retryable as exc:
            drop()
            backend = _backend()
            if attempt == 2:
                raise DeliveryError(str(exc.__cause__ or exc)) from exc
    raise AssertionError("unreachable")


class _Retryable(Exception):
    """The connection broke before the point of no return: nothing was sent, reconnect and try again."""


def _smtp_two_phase(backend: SMTPBackend, email: EmailMessage, commit: Commit) -> str:
    try:
        opened = backend.open()
        conn = backend.connection
        if conn is None:
            raise _Retryable("the SMTP backend opened no connection")
        if opened and conn.sock is not None:
            # The content and the final "." go out as two writes (the commit sits between them); without NODELAY,
            # Nagle's algorithm would hold the "." until the server's delayed ACK, some 40 ms per message.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.ehlo_or_helo_if_needed()
        sender = email.from_email
        code, reply = conn.mail(_addr(sender))
        if code != 250:
            _reset(conn)
            raise DeliveryError(f"MAIL FROM refused: {code} {reply.decode(errors='replace')}")
        for rcpt in email.recipients():
            code, reply = conn.rcpt(rcpt)
            if code not in (250, 251):
                _reset(conn)
                raise DeliveryError(f"RCPT TO refused: {code} {reply.decode(errors='replace')}")
        code, reply = conn.docmd("data")
        if code != 354:
            _reset(conn)
            raise DeliveryError(f"DATA refused: {code} {reply.decode(errors='replace')}")
        # Django's message classes take linesep; the stubs type message() as the standard library's Message.
        data = email.message().as_bytes(linesep="\r\n")  # type: ignore[call-arg]
        data = re.sub(rb"(?m)^\.", b"..", data)  # dot-stuffing (RFC 5321 4.5.2)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        conn.send(data)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _Retryable(str(exc)) from exc
    except DeliveryError:
        raise
    except smtplib.SMTPException as exc:
        drop()
        raise DeliveryError(str(exc)) from exc
    # The point of no return. Until here the server holds an unfinished DATA that it drops with the connection.
    if not commit():
        drop()
        raise Superseded
    try:
        conn.send(b".\r\n")
        code, reply = conn.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        # No answer after the ".": the server may or may not have taken it (RFC 1047). Treated as a failure to be
        # retried: at-least-once for this narrow case, and the stable Message-ID makes a duplicate detectable.
        drop()
        raise DeliveryError(f"no reply after end of data: {exc}") from exc
    text = reply.decode(errors="replace")
    if code != 250:
        raise DeliveryError(f"message refused: {code} {text}")
    return text[:200]


def _reset(conn: smtplib.SMTP) -> None:
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        drop()


def _addr(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1] or value
