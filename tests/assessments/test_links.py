"""Participant links: token strength and storage, windows, GETs that consume nothing, idempotent submit, revocation,
the wrong-token limit, logs, the page flow and its languages."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import zoneinfo

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.db import connections as db_connections
from django.test import Client, RequestFactory, override_settings

from assessments import links, selectors, services
from assessments.models import Administration, ParticipantLink, Response, Score
from participants.services import participant_withdraw

pytestmark = pytest.mark.django_db

PCL5 = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 3 for i in range(1, 27)}


@pytest.fixture
def issued(participant, baseline, alice, in_window):
    link, token = services.link_issue(visit=baseline, by=alice)
    return link, token


def api_url(token, suffix=""):
    return f"/api/v1/links/{token}/{suffix}"


def test_token_is_long_random_and_stored_only_as_a_hash(participant, baseline, alice, api, in_window):
    r1 = api(alice).post(f"/api/v1/visits/{baseline.pk}/link/")
    r2 = api(alice).post(f"/api/v1/visits/{baseline.pk}/link/")
    assert r1.status_code == r2.status_code == 201
    t1, t2 = (r.json()["url"].rstrip("/").rsplit("/", 1)[1] for r in (r1, r2))
    assert r1.json()["url"].endswith(f"/l/{t1}/")
    assert t1 != t2
    assert len(t1) >= 43  # 32 bytes of secrets.token_urlsafe: 256 bits
    assert len(links.new_token()) == 43
    stored = list(ParticipantLink.objects.values_list("token_hash", flat=True))
    assert sorted(stored) == sorted([links.token_hash(t1), links.token_hash(t2)])
    # Both links work: issuing a new one leaves the earlier valid.
    assert api().get(api_url(t1)).status_code == 200 and api().get(api_url(t2)).status_code == 200
    # A coordinator may issue; a rater may not.
    expires = dt.datetime.fromisoformat(r1.json()["expires_at"])
    assert expires == Administration.objects.get(visit=baseline, instrument_code="PCL5").closes_at


def test_rater_cannot_issue_links(baseline, personas, api, in_window):
    assert api(personas["rater"]).post(f"/api/v1/visits/{baseline.pk}/link/").status_code == 403
    assert not ParticipantLink.objects.exists()


def _every_text_cell_containing(needle: str) -> list[str]:
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'character', 'bytea')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE position(%s in "{column}"::text) > 0',  # noqa: S608
                [needle],
            )
            if cursor.fetchone()[0]:
                hits.append(f"{table}.{column}")
    return hits


def test_no_issued_token_anywhere_in_the_database(participant, baseline, alice, api, in_window):
    token = api(alice).post(f"/api/v1/visits/{baseline.pk}/link/").json()["url"].rstrip("/").rsplit("/", 1)[1]
    client = Client()
    client.get(f"/l/{token}/")  # the session now holds the link
    client.get("/l/")
    api().put(api_url(token), {"answers": {"PCL5": {"PCL5_01": 2}}}, format="json")
    assert _every_text_cell_containing(token) == []
    assert _every_text_cell_containing(links.token_hash(token)) == ["assessments_participantlink.token_hash"]


def test_valid_at_window_close_invalid_one_second_later(participant, baseline, alice, api):
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    with time_machine.travel(dt.datetime.combine(baseline.window_start, dt.time(9), tzinfo=tz)):
        _, token = services.link_issue(visit=baseline, by=alice)
    last_second = dt.datetime.combine(baseline.window_end, dt.time(23, 59, 59), tzinfo=tz)
    with time_machine.travel(last_second, tick=False):
        assert api().get(api_url(token)).status_code == 200
    with time_machine.travel(
        dt.datetime.combine(baseline.window_end, dt.time(23, 59, 59, 999999), tzinfo=tz), tick=False
    ):
        assert api().get(api_url(token)).status_code == 200
    with time_machine.travel(last_second + dt.timedelta(seconds=1), tick=False):
        assert api().get(api_url(token)).status_code == 404
        assert Client().get(f"/l/{token}/").status_code == 404


def test_head_and_gets_consume_nothing(issued, api):
    link, token = issued
    before = list(Administration.objects.filter(visit=link.visit).values_list("id", "status", "draft_answers"))
    client = Client()
    assert client.head(f"/l/{token}/").status_code == 302
    for _ in range(3):
        r = client.get(f"/l/{token}/")
        assert r.status_code == 302 and r["Location"] == "/l/"
    for _ in range(3):
        assert api().get(api_url(token)).status_code == 200
    assert list(Administration.objects.filter(visit=link.visit).values_list("id", "status", "draft_answers")) == before
    assert not Response.objects.exists()
    link.refresh_from_db()
    assert link.revoked_at is None and link.last_used_at is None
    assert selectors.link_find(token) is not None


def test_token_moves_into_the_session_and_the_page_url_is_token_free(issued):
    _, token = issued
    client = Client()
    r = client.get(f"/l/{token}/")
    assert r.status_code == 302 and r["Location"] == "/l/"
    assert r["Referrer-Policy"] == "no-referrer"
    r = client.get("/l/", follow=True)
    assert r.status_code == 200
    assert r.redirect_chain[-1][0] == "/l/q/1/"
    assert token not in r.content.decode()
    # Token-free pages: same-origin (a form POST under no-referrer carries "Origin: null", which CSRF refuses).
    assert r["Referrer-Policy"] == "same-origin"
    assert Client().get(f"/l/{links.new_token()}/")["Referrer-Policy"] == "no-referrer"
    assert "1 of 2" in r.content.decode()
    assert "<fieldset" in r.content.decode() and "<legend>" in r.content.decode()
    assert "<script" in r.content.decode() and "<script>" not in r.content.decode()  # static file only (CSP)


def test_json_flow_saves_partial_refuses_incomplete_and_submits_once(issued, api):
    link, token = issued
    r = api().put(api_url(token), {"answers": {"PCL5": {"PCL5_01": 3, "PCL5_02": 2}}}, format="json")
    assert r.status_code == 200
    assert r.json()["administrations"][0]["answers"] == {"PCL5_01": 3, "PCL5_02": 2}
    adm = Administration.objects.get(visit=link.visit, instrument_code="PCL5")
    assert adm.status == "in_progress" and adm.draft_answers == {"PCL5_01": 3, "PCL5_02": 2}
    assert not Score.objects.exists() and not Response.objects.exists()
    # Invalid values are refused per item; what was saved before is kept.
    r = api().put(api_url(token), {"answers": {"PCL5": {"PCL5_03": 9, "PCL5_XX": 1}}}, format="json")
    assert r.status_code == 400 and "PCL5_03" in r.json() and "PCL5_XX" in r.json()
    adm.refresh_from_db()
    assert adm.draft_answers == {"PCL5_01": 3, "PCL5_02": 2}
    # Submitting with items missing is refused, listing them, and stores nothing.
    r = api().post(api_url(token, "submit/"))
    assert r.status_code == 400 and r.json()["code"] == "incomplete"
    assert "PCL5_20" in r.json() and "SCS_26" in r.json() and "PCL5_01" not in r.json()
    assert not Response.objects.exists() and not Score.objects.exists()
    adm.refresh_from_db()
    assert adm.draft_answers == {"PCL5_01": 3, "PCL5_02": 2}
    # Resume from "another device": the JSON GET returns the saved answers.
    assert api().get(api_url(token)).json()["administrations"][0]["answers"] == {"PCL5_01": 3, "PCL5_02": 2}
    r = api().put(api_url(token), {"answers": {"PCL5": PCL5 | {"PCL5_01": 3, "PCL5_02": 2}, "SCS": SCS}}, format="json")
    assert r.status_code == 200
    r = api().post(api_url(token, "submit/"))
    assert r.status_code == 200, r.content
    ids = [x["id"] for x in r.json()["responses"]]
    assert len(ids) == 2
    again = api().post(api_url(token, "submit/"))
    assert again.status_code == 200 and [x["id"] for x in again.json()["responses"]] == ids
    assert Response.objects.count() == 2
    pcl = Response.objects.get(instrument_code="PCL5")
    assert pcl.source == "participant_link" and pcl.link_id == link.pk
    assert Score.objects.get(response=pcl, code="total").value == 23.0
    # A submitted link now looks like any unusable link.
    assert api().get(api_url(token)).status_code == 404


def test_unknown_expired_revoked_and_submitted_links_look_the_same(participant, baseline, alice, api, in_window):
    _, submitted = services.link_issue(visit=baseline, by=alice)
    api().put(api_url(submitted), {"answers": {"PCL5": PCL5, "SCS": SCS}}, format="json")
    assert api().post(api_url(submitted, "submit/")).status_code == 200
    unknown = links.new_token()
    bodies = set()
    for token in (unknown, submitted):
        r = Client().get(f"/l/{token}/")
        assert r.status_code == 404
        bodies.add(r.content)
        assert api().get(api_url(token)).status_code == 404
    assert len(bodies) == 1


def test_expired_and_revoked_pages_match_unknown(participant, baseline, alice, make_participant):
    from participants.models import Site

    Site.objects.filter(code="PDX").update(contact_email="pdx-study@example.org", contact_phone="+1 503 555 0100")
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    with time_machine.travel(dt.datetime.combine(baseline.window_start, dt.time(9), tzinfo=tz)):
        _, expired = services.link_issue(visit=baseline, by=alice)
        link, revoked = services.link_issue(visit=baseline, by=alice)
    ParticipantLink.objects.filter(pk=link.pk).update(revoked_at=dt.datetime.now(dt.UTC))
    with time_machine.travel(dt.datetime.combine(baseline.window_end, dt.time(12), tzinfo=tz)):
        unknown_page = Client().get(f"/l/{links.new_token()}/")
        revoked_page = Client().get(f"/l/{revoked}/")
    with time_machine.travel(dt.datetime.combine(baseline.window_end + dt.timedelta(days=1), dt.time(12), tzinfo=tz)):
        expired_page = Client().get(f"/l/{expired}/")
    assert {p.status_code for p in (unknown_page, revoked_page, expired_page)} == {404}
    assert unknown_page.content == revoked_page.content == expired_page.content
    assert b"pdx-study@example.org" in unknown_page.content  # the site's contact is on the page


def test_links_are_revoked_on_withdrawal(issued, participant, alice, api):
    link, token = issued
    participant_withdraw(
        participant=participant,
        level="stop_contact",
        reason="moved away",
        date=dt.datetime.now(dt.UTC).date(),
        by=alice,
    )
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert api().get(api_url(token)).status_code == 404
    assert api().post(api_url(token, "submit/")).status_code == 404
    assert set(Administration.objects.filter(participant=participant).values_list("status", flat=True)) == {
        "not_applicable"
    }


def test_1000_wrong_tokens_from_one_address_leave_a_valid_link_working(issued, settings):
    link, token = issued
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    # 60 wrong tokens through the pages and the JSON endpoint (the first 20 answer 404, every later one 429), then
    # 940 more counted the way both views count them (the whole 1,000 through the test client takes tens of seconds
    # on a busy CI machine and proves nothing more): the counter, in Redis (the shared cache, so every web process
    # sees it), holds 1,000.
    statuses = [
        guesser.get(api_url(links.new_token()) if n % 2 else f"/l/{links.new_token()}/").status_code for n in range(60)
    ]
    assert statuses == [404] * 20 + [429] * 40
    assert [links.wrong_token_limited(links.client_address(_request("203.0.113.7"))) for _ in range(940)] == [
        True
    ] * 940
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    assert cache.get("assessments:link-failures:203.0.113.7") == 1000
    # The valid link still works from that very address: the JSON endpoint and the page.
    r = guesser.get(api_url(token))
    assert r.status_code == 200
    assert r.json()["visit"] == link.visit.name and [a["instrument"] for a in r.json()["administrations"]] == [
        "PCL5",
        "SCS",
    ]
    page = guesser.get(f"/l/{token}/")
    assert page.status_code == 302 and page["Location"] == "/l/"
    assert guesser.session[links.SESSION_KEY] == link.pk
    assert guesser.get("/l/", follow=True).redirect_chain[-1][0] == "/l/q/1/"
    # Served, and not counted: a valid token adds nothing to the address's wrong-token count, and consumes nothing.
    assert cache.get("assessments:link-failures:203.0.113.7") == 1000
    link.refresh_from_db()
    assert link.revoked_at is None and not Response.objects.exists()
    # A wrong token from that address is refused (429) with a page that says why and never suggests the link was used.
    limited = guesser.get(f"/l/{links.new_token()}/")
    assert limited.status_code == 429
    text = limited.content.decode()
    assert "Too many wrong links were tried from this connection" in text and "15 minutes" in text
    assert "may have been used" not in text
    assert guesser.get(api_url(links.new_token())).json() == {
        "detail": "Too many wrong links were tried from this address. Please try again later.",
        "code": "rate_limited",
    }
    # Another address is not affected.
    assert Client(REMOTE_ADDR="198.51.100.2").get(api_url(links.new_token())).status_code == 404
    assert cache.get("assessments:link-failures:198.51.100.2") == 1


def test_a_submit_retry_with_a_used_link_is_served_and_never_counted(issued, api):
    link, token = issued
    client = Client(REMOTE_ADDR="203.0.113.8")
    client.put(api_url(token), {"answers": {"PCL5": PCL5, "SCS": SCS}}, content_type="application/json")
    first = client.post(api_url(token, "submit/"))
    for _ in range(25):
        assert client.post(api_url(token, "submit/")).json() == first.json()
    assert cache.get("assessments:link-failures:203.0.113.8") is None
    assert Response.objects.filter(participant=link.participant).count() == 2


def _request(remote: str, forwarded: str | None = None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/l/x/", **meta)


def test_client_address_is_remote_addr_unless_a_trusted_proxy_header_is_configured(settings):
    # Default: the header a client can write is ignored.
    assert settings.TRUSTED_PROXY_HEADER == ""
    assert links.client_address(_request("10.0.0.5", "1.2.3.4")) == "10.0.0.5"
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.TRUSTED_PROXY_COUNT = 1
    # One proxy of ours appends the address it saw: the rightmost entry; what the client wrote to its left is ignored.
    assert links.client_address(_request("10.0.0.5", "6.6.6.6, 198.51.100.9")) == "198.51.100.9"
    assert links.client_address(_request("10.0.0.5", " 2001:db8::1 ")) == "2001:db8::1"
    # Missing, empty or not an address: REMOTE_ADDR.
    assert links.client_address(_request("10.0.0.5")) == "10.0.0.5"
    assert links.client_address(_request("10.0.0.5", "")) == "10.0.0.5"
    assert links.client_address(_request("10.0.0.5", "6.6.6.6, not-an-address")) == "10.0.0.5"
    # Two proxies of ours (a load balancer, then nginx): the second entry from the right.
    settings.TRUSTED_PROXY_COUNT = 2
    assert links.client_address(_request("10.0.0.5", "6.6.6.6, 198.51.100.9, 10.0.0.4")) == "198.51.100.9"
    assert links.client_address(_request("10.0.0.5", "198.51.100.9")) == "10.0.0.5"  # did not pass both proxies


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(issued, settings):
    link, token = issued
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    # Every request arrives from the proxy's address; the proxy appends the client's.
    guesser = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.50")
    statuses = [guesser.get(api_url(links.new_token())).status_code for _ in range(25)]
    assert statuses == [404] * 20 + [429] * 5
    assert cache.get("assessments:link-failures:203.0.113.50") == 25
    assert cache.get("assessments:link-failures:10.0.0.2") is None
    # Another participant behind the same proxy, mistyping once, is not limited; a valid link works for both.
    other = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.51")
    assert other.get(api_url(links.new_token())).status_code == 404
    assert other.get(api_url(token)).status_code == 200 and guesser.get(api_url(token)).status_code == 200
    assert cache.get("assessments:link-failures:203.0.113.51") == 1


def test_with_the_cache_unreachable_the_limit_counts_in_this_process(issued, settings, caplog):
    link, token = issued
    from tests.support.smtp import free_port

    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    unreachable = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": nothing_listens}}
    client = Client(REMOTE_ADDR="203.0.113.9")
    with override_settings(CACHES=unreachable), caplog.at_level("WARNING", logger="assessments.links"):
        statuses = [client.get(api_url(links.new_token())).status_code for _ in range(22)]
        page = client.get(f"/l/{links.new_token()}/")
        valid = client.get(api_url(token))
        valid_page = client.get(f"/l/{token}/")
    # Counted locally: the same limit, never a 500; a valid link is served.
    assert statuses == [404] * 20 + [429] * 2
    assert page.status_code == 429 and "Too many wrong links" in page.content.decode()
    assert valid.status_code == 200 and valid.json()["visit"] == link.visit.name
    assert valid_page.status_code == 302 and valid_page["Location"] == "/l/"
    assert links.local_counter.incr("203.0.113.9") == 24
    # One warning for the outage, naming no address or token.
    warnings = [r.getMessage() for r in caplog.records if r.name == "assessments.links"]
    assert len(warnings) == 1 and "counting wrong tokens in this process" in warnings[0]
    assert token not in warnings[0]
    link.refresh_from_db()
    assert link.revoked_at is None and not Response.objects.exists()


def test_no_token_in_any_log_line(participant, baseline, alice, api, caplog, in_window):
    caplog.set_level(logging.DEBUG)
    token = api(alice).post(f"/api/v1/visits/{baseline.pk}/link/").json()["url"].rstrip("/").rsplit("/", 1)[1]
    wrong = links.new_token()
    client = Client()
    client.head(f"/l/{token}/")
    client.get(f"/l/{token}/")
    client.get("/l/", follow=True)
    client.post("/l/q/1/", {"PCL5_01": "1", "action": "later"})
    client.get(f"/l/{wrong}/")
    api().get(api_url(token))
    api().get(api_url(wrong))
    api().put(api_url(token), {"answers": {"PCL5": PCL5, "SCS": SCS}}, format="json")
    api().post(api_url(token, "submit/"))
    api().post(api_url(token, "submit/"))
    api().post(api_url(wrong, "submit/"))
    messages = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("Not Found" in m for m in messages)  # the 404s were logged, redacted
    for message in messages:
        assert token not in message and wrong not in message
    # The development server's access log goes through the same filter.
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s', (f"GET /l/{token}/ HTTP/1.1", 302), None
    )
    assert logging.getLogger("django.server").filter(record)
    assert token not in record.getMessage()


def test_html_flow_inline_errors_review_and_thanks(issued):
    link, token = issued
    client = Client()
    client.get(f"/l/{token}/")
    r = client.post("/l/q/1/", {"PCL5_01": "2", "action": "next"})
    assert r.status_code == 400
    page = r.content.decode()
    # Only the first screen's questions (PCL5_01..07 of 20) are asked for there.
    assert 'role="alert"' in page and "Please answer 6 more questions." in page
    assert 'aria-describedby="err-PCL5_02"' in page and "err-PCL5_08" not in page and 'name="PCL5_08"' not in page
    assert Administration.objects.get(visit=link.visit, instrument_code="PCL5").draft_answers == {"PCL5_01": 2}
    assert "1 of 46 answered" in page
    screens = [("/l/q/1/", range(1, 8)), ("/l/q/1/2/", range(8, 15)), ("/l/q/1/3/", range(15, 21))]
    for (url, numbers), (following, _) in zip(screens, [*screens[1:], ("/l/q/2/", None)], strict=True):
        r = client.post(url, {**{f"PCL5_{i:02d}": "1" for i in numbers}, "action": "next"})
        assert r.status_code == 302 and r["Location"] == following
    r = client.get("/l/q/2/")
    assert "Questionnaire 2 of 2, page 1 of 4" in r.content.decode() and "20 of 46 answered" in r.content.decode()
    for url, numbers in (("/l/q/2/", range(1, 8)), ("/l/q/2/2/", range(8, 15)), ("/l/q/2/3/", range(15, 22))):
        r = client.post(url, {**{f"SCS_{i:02d}": "3" for i in numbers}, "action": "next"})
        assert r.status_code == 302
    assert r["Location"] == "/l/q/2/4/"
    r = client.post("/l/q/2/4/", {**{f"SCS_{i:02d}": "3" for i in range(22, 27)}, "action": "next"})
    assert r["Location"] == "/l/review/"
    r = client.get("/l/review/")
    assert r.status_code == 200 and "Check your answers" in r.content.decode()
    assert not Response.objects.exists()
    r = client.post("/l/review/")
    assert r.status_code == 302 and r["Location"] == "/l/done/"
    assert "Thank you" in client.get("/l/done/").content.decode()
    assert Response.objects.count() == 2
    assert Client().get(f"/l/{token}/").status_code == 404


def test_participant_pages_name_their_own_icon_so_browsers_ask_for_no_favicon_ico(issued):
    # Without a named icon a browser asks for /favicon.ico, a 404 on every participant's first page.
    from django.contrib.staticfiles import finders

    link, token = issued
    client = Client()
    for page in (client.get(f"/l/{token}/", follow=True), Client().get("/l/not-a-token/")):
        assert '<link rel="icon" href="/static/assessments/favicon.svg" type="image/svg+xml">' in page.content.decode()
    assert "Questionnaire 1 of 2, page 1 of 3" in client.get("/l/q/1/").content.decode()
    assert finders.find("assessments/favicon.svg") is not None
    assert not Response.objects.exists() and ParticipantLink.objects.get(pk=link.pk).revoked_at is None


def test_autosave_saves_each_answer(issued):
    link, token = issued
    client = Client()
    client.get(f"/l/{token}/")
    r = client.post("/l/q/1/autosave/", {"PCL5_04": "3"})
    assert r.status_code == 200 and r.json() == {"saved": True}
    assert Administration.objects.get(visit=link.visit, instrument_code="PCL5").draft_answers == {"PCL5_04": 3}
    assert not Score.objects.exists()
    # Without the session (another browser) the page refuses, showing nothing of the participant.
    assert Client().post("/l/q/1/autosave/", {"PCL5_04": "1"}).status_code == 404


@pytest.mark.no_text_packs
def test_pages_follow_the_participant_language(tmp_path, participant, baseline, alice, in_window):
    """A participant whose language is Spanish sees the Spanish packs' wording and Spanish chrome."""
    from django.core.management import call_command

    from participants.models import ContactDetails
    from tests.support.text_packs import pack_data, write_pack

    for code in ("PCL5", "SCS"):
        call_command("load_instrument_text", str(write_pack(tmp_path, pack_data(code, "es"))))
    ContactDetails.objects.filter(participant=participant).update(language="es")
    _, token = services.link_issue(visit=baseline, by=alice)
    client = Client()
    client.get(f"/l/{token}/")
    page = client.get("/l/q/1/").content.decode()
    assert '<html lang="es">' in page
    assert "ES test wording item PCL5_01" in page
    assert "ES test label 4" in page and "ES test title PCL5" in page and "ES test time frame PCL5" in page
    assert "Guardar y continuar" in page and "1 de 2" in page


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_store_one_response(make_participant, alice):
    from scheduling.models import Visit
    from scheduling.services import schedule_generate

    participant = make_participant("randomized")
    if not Visit.objects.filter(participant=participant).exists():
        schedule_generate(participant=participant, by=None)
    baseline = Visit.objects.get(participant=participant, code="BASELINE")
    tz = zoneinfo.ZoneInfo(participant.time_zone)
    with time_machine.travel(dt.datetime.combine(baseline.window_start, dt.time(12), tzinfo=tz)):
        _, token = services.link_issue(visit=baseline, by=alice)
        Client().put(api_url(token), {"answers": {"PCL5": PCL5, "SCS": SCS}}, content_type="application/json")
        barrier = threading.Barrier(2)
        results = []

        def submit():
            try:
                barrier.wait()
                r = Client().post(api_url(token, "submit/"))
                results.append((r.status_code, sorted(x["id"] for x in r.json().get("responses", []))))
            finally:
                db_connections.close_all()

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert Response.objects.count() == 2  # one per instrument, not two per instrument
    assert [status for status, _ in results] == [200, 200]
    assert results[0][1] == results[1][1] == sorted(Response.objects.values_list("id", flat=True))


def _radio_names(page: str) -> dict[str, list[tuple[str, str]]]:
    """Per item code, each radio's (value, accessible name): the text of the <label> that wraps the input."""
    from html.parser import HTMLParser

    class Radios(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.found: dict[str, list[tuple[str, str]]] = {}
            self.current: list | None = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "label":
                self.current = [None, None, ""]
            elif tag == "input" and a.get("type") == "radio":
                assert self.current is not None, f"radio {a} outside a label"
                self.current[:2] = [a["name"], a["value"]]

        def handle_data(self, data):
            if self.current is not None:
                self.current[2] += data

        def handle_endtag(self, tag):
            if tag == "label" and self.current is not None:
                name, value, text = self.current
                if name is not None:
                    self.found.setdefault(name, []).append((value, " ".join(text.split())))
                self.current = None

    parser = Radios()
    parser.feed(page)
    return parser.found


def test_self_compassion_pages_label_only_the_end_points_and_name_every_radio(participant, baseline, alice, in_window):
    # Neff's form labels only 1 and 5 (the test packs label them "EN test label 1" and "EN test label 5"); 2, 3
    # and 4 carry their number, which is also the radio's accessible name (each input sits inside its own <label>).
    services.administration_add(visit=baseline, instrument_code="SCS_SF", by=alice, reason="sub-study")
    _, token = services.link_issue(visit=baseline, by=alice)
    client = Client()
    client.get(f"/l/{token}/")
    expected = [("1", "EN test label 1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "EN test label 5")]
    pages = {}
    for number, screens in ((2, 4), (3, 2)):  # SCS in 4 screens of 26 items, SCS-SF in 2 of 12
        for screen in range(1, screens + 1):
            page = client.get(f"/l/q/{number}/{screen}/").content.decode()
            pages.update(_radio_names(page))
            for word in ("Rarely", "Sometimes", "Often"):
                assert word not in page
    scs = {code: names for code, names in pages.items() if code.startswith("SCS_")}
    assert sorted(scs) == sorted([f"SCS_{i:02d}" for i in range(1, 27)] + [f"SCS_SF_{i:02d}" for i in range(1, 13)])
    assert all(names == expected for names in scs.values())
    assert not Response.objects.exists()  # reading the pages stored nothing
