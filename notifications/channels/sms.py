"""SMS through a pluggable backend chosen by SMS_URL.

- ``console://``: prints the message (development).
- ``locmem://``: keeps messages in ``outbox`` (tests).
- ``twilio://SID:TOKEN@host[:port]?from=+15550001111``: the provider's REST API shape,
  ``POST /2010-04-01/Accounts/{SID}/Messages.json`` with form fields To, From, Body and HTTP basic auth, over HTTPS;
  ``twilio+http://`` speaks plain HTTP (a local test server only).

An HTTP request cannot be half-sent the way SMTP DATA can, so ``commit()`` runs just before the request: an attempt that
dies before it has sent nothing; one that dies during the request leaves a row marked sent (at-most-once), which is
the safer side for a text message nobody can recall.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from notifications.channels.contract import Commit, DeliveryError, Outgoing, Superseded

outbox: list[Outgoing] = []
SCHEMES = ("console", "locmem", "twilio", "twilio+http")


def parse_sms_url(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ImproperlyConfigured(f"SMS_URL scheme {parts.scheme!r} is not accepted; accepted: {', '.join(SCHEMES)}")
    config = {"scheme": parts.scheme}
    if parts.scheme.startswith("twilio"):
        query = urllib.parse.parse_qs(parts.query)
        if not (parts.username and parts.password and parts.hostname and query.get("from")):
            raise ImproperlyConfigured("SMS_URL for twilio needs SID:TOKEN@host and ?from=+number")
        http = "http" if parts.scheme == "twilio+http" else "https"
        port = f":{parts.port}" if parts.port else ""
        config.update(
            sid=urllib.parse.unquote(parts.username),
            token=urllib.parse.unquote(parts.password),
            from_=query["from"][0],
            base=f"{http}://{parts.hostname}{port}",
        )
    return config


def deliver(message: Outgoing, commit: Commit) -> str:
    config = parse_sms_url(getattr(settings, "SMS_URL", "console://"))
    if config["scheme"] in ("console", "locmem"):
        if not commit():
            raise Superseded
        if config["scheme"] == "locmem":
            outbox.append(message)
        else:
            sys.stdout.write(f"SMS to {message.to}: {message.body}\n")
            sys.stdout.flush()
        return ""
    url = f"{config['base']}/2010-04-01/Accounts/{urllib.parse.quote(config['sid'])}/Messages.json"
    body = urllib.parse.urlencode({"To": message.to, "From": config["from_"], "Body": message.body}).encode()
    auth = base64.b64encode(f"{config['sid']}:{config['token']}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is fixed to http(s) above)
        url,
        data=body,
        method="POST",
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    if not commit():
        raise Superseded
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise DeliveryError(f"SMS provider refused: {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryError(f"SMS provider unreachable: {exc}") from exc
    return str(payload.get("sid", ""))[:200]
