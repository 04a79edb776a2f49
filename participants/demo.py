"""The demo study: a SAMATI-style delayed-treatment study with two sites, a user per role and about a dozen
participants in different states. Built through the same services as real data, so it is audited too.

The study follows samati-v2, which randomizes only after the baseline visit: ``before_randomize`` records what must
happen between enrollment and randomization. It comes from the caller because those visits are scheduling's, and
participants does not import scheduling (``dashboard.demo.seed_demo`` passes it; ``manage.py seed_demo`` runs that)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone

from participants import services
from participants.models import Participant, Site, Study
from trialsite.roles import Role

DEMO_PASSWORD_PREFIX = "demo-"  # noqa: S105 (demo accounts only; printed by seed_demo)
DEMO_USERS: list[tuple[str, Role, list[str]]] = [
    ("coordinator", Role.COORDINATOR, ["PDX", "NYC"]),
    ("therapist", Role.THERAPIST, ["PDX"]),
    ("therapist2", Role.THERAPIST, ["PDX"]),
    ("rater", Role.RATER, ["PDX", "NYC"]),
    ("investigator", Role.INVESTIGATOR, ["PDX", "NYC"]),
    ("statistician", Role.STATISTICIAN, ["PDX", "NYC"]),
    ("unblinded_statistician", Role.UNBLINDED_STATISTICIAN, ["PDX", "NYC"]),
    ("admin", Role.ADMIN, ["PDX", "NYC"]),
]
SITES = [
    ("PDX", "Portland clinic", "America/Los_Angeles"),
    ("NYC", "New York clinic", "America/New_York"),
]
ARMS = [("immediate", "Immediate treatment"), ("delayed", "Delayed treatment (16-week waitlist)")]
CRITERIA = [
    ("INC_AGE", "inclusion", "Aged 18 to 65"),
    ("INC_SAD", "inclusion", "Moderate-to-severe generalized social anxiety disorder (LSAS >= 60)"),
    ("EXC_CARDIO", "exclusion", "Uncontrolled hypertension or other cardiovascular contraindication"),
    ("EXC_PREG", "exclusion", "Pregnant or breastfeeding"),
]
# (site, final state) for each demo participant.
PLAN: list[tuple[str, str]] = [
    ("PDX", "screening"),
    ("PDX", "screen_failed"),
    ("PDX", "eligible"),
    ("PDX", "consented"),
    ("PDX", "enrolled"),
    ("PDX", "randomized"),
    ("PDX", "randomized"),
    ("PDX", "withdrawn"),
    ("NYC", "screening"),
    ("NYC", "consented"),
    ("NYC", "randomized"),
    ("NYC", "randomized"),
]


def password_for(username: str) -> str:
    return f"{DEMO_PASSWORD_PREFIX}{username}-2026"


def email_for(username: str) -> str:
    return f"{username}@demo.trialsite.invalid"


BeforeRandomize = Callable[[Participant, AbstractUser], None]


@transaction.atomic
def seed_demo(*, before_randomize: BeforeRandomize) -> list[tuple[str, str, str]]:
    """Create the demo study once; on later runs only reset the demo passwords. Returns (user, password, roles)."""
    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
    study = Study.objects.filter(code="SAM").first()
    created = study is None
    if study is None:
        study = services.study_create(
            code="SAM",
            title="MDMA-assisted therapy for social anxiety disorder (demo, SAMATI-style)",
            protocol_reference="NCT05138068 (illustrative demo)",
            protocol_code="samati-v2",
            target_enrollment=20,
            blinded=False,
            by=admin,
        )
    sites: dict[str, Site] = {}
    for code, name, tz in SITES:
        site = Site.objects.filter(code=code).first()
        if site is None:
            site = services.site_create(
                code=code,
                name=name,
                time_zone=tz,
                contact_email=f"{code.lower()}-study@trialsite.invalid",
                contact_phone="+1 555 0100",
                studies=[study],
                by=admin,
            )
        elif not site.studies.filter(pk=study.pk).exists():
            services.site_update(site=site, studies=[*site.studies.all(), study], reason="demo study site", by=admin)
        sites[code] = site
    logins = []
    for username, role, site_codes in DEMO_USERS:
        user = (
            admin
            if username == "admin"
            else user_model.objects.get_or_create(username=username, defaults={"is_staff": role in (Role.ADMIN,)})[0]
        )
        user.set_password(password_for(username))
        # Each account has an address, so the alert and reminder mail the demo sends to staff can be read (var/mail/).
        user.email = email_for(username)
        user.save()
        for code in site_codes:
            services.membership_grant(user=user, site=sites[code], role=role, by=admin)
        logins.append((username, password_for(username), f"{role} at {', '.join(site_codes)}"))
    if created:
        _build_study(study, sites, admin, before_randomize)
    return logins


def _build_study(study: Study, sites: dict[str, Site], admin: AbstractUser, before_randomize: BeforeRandomize) -> None:
    for code, label in ARMS:
        services.arm_create(study=study, code=code, label=label, by=admin)
    for order, (code, kind, text) in enumerate(CRITERIA):
        services.criterion_create(study=study, code=code, kind=kind, text=text, order=order, by=admin)
    services.consent_document_publish(study=study, version="1.0", title="Main study consent", by=admin)
    services.allocation_list_generate(study=study, strata=list(sites), per_stratum=20, seed="demo-seed-2026", by=admin)
    coordinator = get_user_model().objects.get(username="coordinator")
    steps = ["screening", "eligible", "consented", "enrolled", "randomized"]
    for index, (site_code, final) in enumerate(PLAN):
        participant = services.participant_create(
            study=study,
            site=sites[site_code],
            by=coordinator,
            contact={
                "full_name": f"Demo Participant {index + 1}",
                "email": f"participant{index + 1}@example.invalid",
                "preferred_channel": "email",
                "language": "es" if index % 4 == 3 else "en",
            },
        )
        if final == "screening":
            continue
        eligible = final != "screen_failed"
        services.eligibility_record(
            participant=participant,
            by=coordinator,
            answers={"INC_AGE": True, "INC_SAD": eligible, "EXC_CARDIO": False, "EXC_PREG": False},
        )
        if final in ("screen_failed", "eligible"):
            continue
        services.consent_record(
            participant=participant,
            version="1.0",
            by=coordinator,
            signed_at=timezone.now() - dt.timedelta(days=30 - index),
        )
        target = "randomized" if final == "withdrawn" else final
        if steps.index(target) >= steps.index("enrolled"):
            services.participant_enroll(participant=participant, by=coordinator)
        if steps.index(target) >= steps.index("randomized"):
            before_randomize(participant, coordinator)
            services.participant_randomize(participant=participant, by=coordinator)
        if final == "withdrawn":
            participant = Participant.objects.get(pk=participant.pk)
            services.participant_withdraw(
                participant=participant,
                level="stop_follow_up",
                by=coordinator,
                reason="Moved away from the study area",
                date=timezone.localdate(),
            )
