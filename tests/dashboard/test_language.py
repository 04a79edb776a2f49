"""Each member of staff chooses the language of the staff pages (English or Spanish); the choice is kept per user,
changed through an audited service, and the pages render in it."""

from __future__ import annotations

import pytest
from django.db import transaction

from audit.models import AuditEvent
from participants import services
from participants.models import StaffProfile
from tests.dashboard.conftest import page_text
from trialsite.errors import PermissionDeniedError, ServiceError

pytestmark = pytest.mark.django_db


def test_choosing_spanish_renders_the_pages_in_spanish_and_is_audited(client, alice):
    client.force_login(alice)
    body = page_text(client.get("/settings/language/"))
    assert '<html lang="en">' in body and "<h1>Language</h1>" in body
    response = client.post("/settings/language/", {"language": "es", "next": "/home/"})
    assert response.status_code == 302 and response["Location"] == "/home/"
    body = page_text(client.get("/home/"))
    assert '<html lang="es">' in body
    assert "<h1>Hoy</h1>" in body and "Visitas de hoy" in body and "Cerrar sesión" in body
    assert StaffProfile.objects.get(user=alice).language == "es"
    event = AuditEvent.objects.get(entity_type="staff_profile")
    assert (event.actor_username, event.action, event.field, event.old_value, event.new_value) == (
        "alice", "create", "language", None, "es"
    )  # fmt: skip
    # Back to English: one more audit row; the same choice again records nothing.
    client.post("/settings/language/", {"language": "en"})
    client.post("/settings/language/", {"language": "en"})
    assert list(AuditEvent.objects.filter(entity_type="staff_profile").values_list("old_value", "new_value")) == [
        (None, "es"),
        ("es", "en"),
    ]
    assert '<html lang="en">' in page_text(client.get("/home/"))


def test_the_choice_follows_the_user_not_the_browser(client, alice):
    with transaction.atomic():
        services.staff_language_set(user=alice, language="es", by=alice)
    client.force_login(alice)
    body = page_text(client.get("/home/", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="es">' in body


def test_an_unknown_language_is_refused(client, alice):
    client.force_login(alice)
    response = client.post("/settings/language/", {"language": "fr"})
    assert response.status_code == 400
    assert not StaffProfile.objects.exists()


def test_the_service_changes_only_ones_own_language(alice, bob):
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        services.staff_language_set(user=bob, language="es", by=alice)
    with pytest.raises(ServiceError), transaction.atomic():
        services.staff_language_set(user=alice, language="xx", by=alice)
    with transaction.atomic():
        services.staff_language_set(user=bob, language="es", by=None)  # the system may
    assert StaffProfile.objects.get(user=bob).language == "es"


def test_the_sign_in_page_follows_the_browser_and_offers_the_switch(client):
    body = page_text(client.get("/login/", headers={"Accept-Language": "es"}))
    assert '<html lang="es">' in body and "Iniciar sesión" in body
    assert 'action="/i18n/setlang/"' in body
