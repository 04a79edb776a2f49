"""Instrument text packs: loading (command, service, dashboard), refusal with JSON paths, versions that never replace
a used pack, the participant page in the pack's wording, held questionnaires and the deployment check.

Every pack here is built by tests/support/text_packs.py with artificial wording ("ES test wording item SCS_01")."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from assessments import checks, services
from assessments.models import Administration, InstrumentText, ParticipantLink, Response
from audit.models import AuditEvent
from participants.models import ContactDetails
from tests.conftest import table_state
from tests.factories import staff
from tests.support.text_packs import pack_data, write_pack
from trialsite.errors import ServiceError
from trialsite.roles import Role

pytestmark = [pytest.mark.django_db, pytest.mark.no_text_packs]

PCL5 = {f"PCL5_{i:02d}": 1 for i in range(1, 21)}
SCS = {f"SCS_{i:02d}": 3 for i in range(1, 27)}


def load(tmp_path, data, name=None):
    call_command("load_instrument_text", str(write_pack(tmp_path, data, name)))


def set_language(participant, language):
    ContactDetails.objects.filter(participant=participant).update(language=language)


def open_link(token):
    client = Client()
    client.get(f"/l/{token}/")
    return client


def whole(client, number: int) -> str:
    """Every screen of questionnaire ``number`` (a screen holds eight questions at most), one after the other."""
    bodies = [client.get(f"/l/q/{number}/")]
    bodies += [client.get(f"/l/q/{number}/{screen}/") for screen in range(2, 10)]
    return "\n".join(b.content.decode() for b in bodies if b.status_code == 200)


def test_spanish_and_english_scs_packs_put_their_wording_on_the_page_in_the_right_language(
    tmp_path, participant, baseline, alice, in_window
):
    load(tmp_path, pack_data("SCS", "en"))
    load(tmp_path, pack_data("SCS", "es"))
    _, token = services.link_issue(visit=baseline, by=alice)
    client = open_link(token)
    # English: the PCL-5's shipped wording first, then the SCS in the English pack's wording.
    english = whole(client, 2)
    assert "EN test title SCS" in english and "EN test time frame SCS" in english
    assert "EN test instructions SCS" in english
    assert all(f"EN test wording item SCS_{i:02d}" in english for i in range(1, 27))
    assert "EN test label 1" in english and "EN test label 5" in english
    assert "ES test" not in english and "Item 1<" not in english
    # The same link in Spanish: the PCL-5 has no Spanish pack, so only the SCS is offered, in the Spanish pack's words.
    set_language(participant, "es")
    spanish = whole(client, 1)
    assert '<html lang="es">' in spanish
    assert "ES test title SCS" in spanish and "ES test time frame SCS" in spanish
    assert all(f"ES test wording item SCS_{i:02d}" in spanish for i in range(1, 27))
    assert "ES test label 1" in spanish and "EN test" not in spanish and "PCL5_01" not in spanish
    assert "1 de 1" in spanish
    # Answering pins the Spanish pack: the stored response names the words it was answered under.
    es_pack = InstrumentText.objects.get(instrument_code="SCS", language="es")
    assert client.post("/l/q/1/autosave/", SCS).status_code == 200  # every screen\'s answers, as autosave saves them
    assert client.post("/l/review/").status_code == 302
    response = Response.objects.get(instrument_code="SCS")
    assert response.text_pack_id == es_pack.pk
    assert Administration.objects.get(visit=baseline, instrument_code="SCS").text_pack_id == es_pack.pk
    assert not Response.objects.filter(instrument_code="PCL5").exists()  # held: never asked, never submitted
    done = client.get("/l/done/").content.decode()
    assert "Gracias" in done and "Thank you" not in done


def test_a_participant_without_a_pack_in_their_language_gets_no_link_and_staff_see_why(
    participant, baseline, alice, api, in_window
):
    set_language(participant, "es")  # no Spanish pack for the PCL-5 or the SCS
    with pytest.raises(ServiceError) as refused:
        services.link_issue(visit=baseline, by=alice)
    assert refused.value.code == "validated_text_missing"
    response = api(alice).post(f"/api/v1/visits/{baseline.pk}/link/")
    assert response.status_code == 400 and "validated text missing" in response.json()["detail"]
    assert not ParticipantLink.objects.filter(visit=baseline).exists()
    # Staff see why, through the API ...
    rows = {row["instrument"]: row for row in api(alice).get(f"/api/v1/visits/{baseline.pk}/administrations/").json()}
    assert rows["PCL5"]["held"] is rows["SCS"]["held"] is True
    assert rows["PCL5"]["hold_reason"] == rows["SCS"]["hold_reason"] == "validated_text_missing"
    # ... and on the participant page, which offers no link for the visit.
    client = Client()
    client.force_login(alice)
    page = client.get(f"/participants/{participant.participant_id}/").content.decode()
    assert page.count("Validated text missing") >= 2  # BASELINE's two, and those of the visits to come
    assert f'action="/visits/{baseline.pk}/link/"' not in page
    # An English participant without an English SCS pack gets a link that offers the PCL-5 only.
    set_language(participant, "en")
    link, token = services.link_issue(visit=baseline, by=alice)
    rows = {row["instrument"]: row for row in api(alice).get(f"/api/v1/visits/{baseline.pk}/administrations/").json()}
    assert rows["PCL5"]["held"] is False and rows["PCL5"]["hold_reason"] is None and rows["SCS"]["held"] is True
    state = Client().get(f"/api/v1/links/{token}/").json()
    assert [a["instrument"] for a in state["administrations"]] == ["PCL5"]
    client = open_link(token)
    assert "1 of 1" in client.get("/l/q/1/").content.decode()
    assert client.post("/l/q/1/autosave/", PCL5).status_code == 200  # every screen\'s answers, as autosave saves them
    assert client.post("/l/review/").status_code == 302
    assert list(Response.objects.filter(visit=baseline).values_list("instrument_code", flat=True)) == ["PCL5"]


def test_the_worklist_shows_validated_text_missing(participant, baseline, alice, in_window):
    set_language(participant, "es")
    client = Client()
    client.force_login(alice)
    home = "".join(
        client.get("/home/", {"list": key}).content.decode() for key in ("questionnaires-due", "questionnaires-overdue")
    )
    assert "Validated text missing:" in home and "PCL5, SCS not offered" in home
    assert f'action="/visits/{baseline.pk}/link/"' not in home


def broken_pack():
    data = pack_data("SCS", "fr")
    data["items"]["SCS_27"] = "FR test wording item SCS_27"
    del data["items"]["SCS_05"]
    data["option_labels"]["scs_frequency"]["7"] = "FR test label 7"
    data["option_labels"]["nope"] = {"1": "FR test label"}
    return data


def test_a_broken_pack_is_refused_with_every_path_and_nothing_changes(tmp_path, participant):
    before = table_state()
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError) as refused:
        load(tmp_path, broken_pack())
    message = str(refused.value)
    for path in (
        "language: 'fr' is not a declared language",
        "items.SCS_27: unknown item",
        "items.SCS_05: missing",
        "option_labels.scs_frequency.7: 7 is not a value of option set 'scs_frequency'",
        "option_labels.nope: unknown option set",
    ):
        assert path in message, path
    unknown = {**pack_data("SCS", "es"), "instrument": "NOPE"}
    with pytest.raises(CommandError, match=r"instrument: unknown instrument 'NOPE'"):
        load(tmp_path, unknown, "nope.json")
    wrong_version = {**pack_data("SCS", "es"), "instrument_version": "9.9"}
    with pytest.raises(CommandError, match=r"instrument_version: SCS has no version 9.9"):
        load(tmp_path, wrong_version, "v99.json")
    no_options = pack_data("SCS", "es")
    del no_options["option_labels"]["scs_frequency"]
    with pytest.raises(CommandError, match=r"option_labels.scs_frequency: missing"):
        load(tmp_path, no_options, "no-options.json")
    structure = pack_data("SCS", "es")
    structure["items"]["SCS_01"] = ""
    del structure["title"]
    with pytest.raises(CommandError) as refused:
        load(tmp_path, structure, "structure.json")
    assert "items.SCS_01: '' should be non-empty" in str(refused.value) and "'title' is a required property" in str(
        refused.value
    )
    placeholder = {**pack_data("SCS", "es"), "placeholder": True}
    with pytest.raises(CommandError, match=r"placeholder: placeholder wording is accepted only in the demo"):
        load(tmp_path, placeholder, "placeholder.json")
    (tmp_path / "garbage.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CommandError, match=r"not a JSON document"):
        call_command("load_instrument_text", str(tmp_path / "garbage.json"))
    assert table_state() == before and AuditEvent.objects.count() == events


def test_the_dashboard_page_loads_a_pack_for_administrators_and_refuses_broken_ones(pdx, participant):
    admin = staff("ada", Role.ADMIN, pdx)
    coordinator = staff("cora", Role.COORDINATOR, pdx)
    client = Client()
    client.force_login(admin)
    page = client.get("/instrument-texts/").content.decode()
    assert "Load a text pack" in page and page.count("Validated text missing") >= 5  # SCS, SCS_SF, LSAS_SR x en/es
    before = table_state()
    refused = client.post("/instrument-texts/", {"text": json.dumps(broken_pack())})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "items.SCS_27: unknown item" in body and "items.SCS_05: missing" in body and "nothing was stored" in body
    assert table_state() == before
    loaded = client.post("/instrument-texts/", {"text": json.dumps(pack_data("SCS", "es"))}, follow=True)
    assert "Loaded SCS text in &#x27;es&#x27;, version 1.0." in loaded.content.decode()
    row = InstrumentText.objects.get(instrument_code="SCS", language="es")
    assert row.loaded_by == admin and row.source == "pasted pack"
    event = AuditEvent.objects.get(entity_type="instrument_text", field="language")
    assert event.actor == admin and event.new_value == "es"
    # A coordinator reads the page but may not load.
    client.force_login(coordinator)
    page = client.get("/instrument-texts/").content.decode()
    assert "Load a text pack" not in page and "SCS v1.0" in page
    denied = client.post("/instrument-texts/", {"text": json.dumps(pack_data("SCS", "en"))})
    assert denied.status_code == 403
    assert not InstrumentText.objects.filter(language="en").exists()


def test_a_pack_in_use_is_superseded_by_a_new_version_never_replaced(tmp_path, participant, baseline, alice, in_window):
    set_language(participant, "es")
    load(tmp_path, pack_data("PCL5", "es"))
    load(tmp_path, pack_data("SCS", "es"))
    first = InstrumentText.objects.get(instrument_code="SCS", language="es")
    events = AuditEvent.objects.count()
    load(tmp_path, pack_data("SCS", "es"))  # the same file again: nothing stored, nothing audited
    assert InstrumentText.objects.filter(instrument_code="SCS").count() == 1 and AuditEvent.objects.count() == events
    _, token = services.link_issue(visit=baseline, by=alice)
    client = open_link(token)
    client.post("/l/q/2/autosave/", {"SCS_01": "2"})  # the participant begins the SCS under version 1.0
    reworded = pack_data("SCS", "es")
    reworded["items"]["SCS_01"] = "ES reworded test wording item SCS_01"
    with pytest.raises(CommandError, match=r"version: SCS v1.0 \(es\) text version 1.0 is already loaded"):
        load(tmp_path, reworded, "reworded.json")
    reworded["version"] = "2.0"
    load(tmp_path, reworded, "reworded-2.json")
    second = InstrumentText.objects.get(instrument_code="SCS", language="es", version="2.0")
    event = AuditEvent.objects.get(entity_type="instrument_text", entity_id=str(second.pk), field="supersedes")
    assert f"pack {first.pk}" in event.new_value
    # The participant half-way through keeps the words they began with; the earlier pack stays readable.
    page = client.get("/l/q/2/").content.decode()
    assert "ES test wording item SCS_01" in page and "reworded" not in page
    assert client.post("/l/q/1/autosave/", PCL5).status_code == 200  # every screen\'s answers, as autosave saves them
    assert client.post("/l/q/2/autosave/", SCS).status_code == 200  # every screen\'s answers, as autosave saves them
    assert client.post("/l/review/").status_code == 302
    assert Response.objects.get(instrument_code="SCS").text_pack_id == first.pk
    # A questionnaire not begun yet gets the new wording.
    adm = Administration.objects.get(visit=baseline, instrument_code="PCL5")
    assert adm.text_pack.version == "1.0" and adm.text_pack.instrument_code == "PCL5"


def test_check_deploy_warns_per_study_instrument_and_language_without_a_pack(tmp_path, participant):
    set_language(participant, "es")
    warnings = checks.check_instrument_texts()
    messages = sorted(w.msg for w in warnings)
    assert {w.id for w in warnings} == {"assessments.W001"}
    study = participant.study.code
    # The MAPP-style protocol asks the PCL-5 (English wording shipped) and the SCS of its participants.
    assert any(f"study {study}: self-report instrument SCS v1.0 has no text pack in 'en'" in m for m in messages)
    assert any(f"study {study}: self-report instrument SCS v1.0 has no text pack in 'es'" in m for m in messages)
    assert any(f"study {study}: self-report instrument PCL5 v1.0 has no text pack in 'es'" in m for m in messages)
    assert not any("PCL5 v1.0 has no text pack in 'en'" in m for m in messages)
    assert not any("CAPS5" in m or "CSSRS" in m for m in messages)  # clinician-rated: no participant wording
    for code, language in (("SCS", "en"), ("SCS", "es"), ("PCL5", "es")):
        load(tmp_path, pack_data(code, language))
    assert [w.msg for w in checks.check_instrument_texts() if f"study {study}:" in w.msg] == []


@override_settings(DEBUG=True)
def test_demo_placeholder_packs_show_a_banner_and_never_count_as_validated(participant, baseline, alice, in_window):
    from assessments.demo import seed_demo_texts

    loaded = seed_demo_texts()
    assert "SCS:en" in loaded and "SCS:es" in loaded and "PCL5:es" in loaded and "PCL5:en" not in loaded
    assert seed_demo_texts() == []  # idempotent
    _, token = services.link_issue(visit=baseline, by=alice)
    client = open_link(token)
    page = client.get("/l/q/2/").content.decode()
    assert "Demo: placeholder wording." in page and "[en placeholder] Item 1" in page
    assert "Demo: placeholder wording." not in client.get("/l/q/1/").content.decode()  # the PCL-5's own wording
    assert any("SCS v1.0 has no text pack in 'en'" in w.msg for w in checks.check_instrument_texts())
