"""factory_boy factories and fixed personas for permission tests."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.db import transaction

from participants import services
from participants.models import Arm, ConsentDocument, EligibilityCriterion, Site, Study
from trialsite.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        django_get_or_create = ("code",)

    code = "MAP"
    title = "MDMA-assisted therapy for PTSD (test)"
    protocol_code = "mapp-v1"
    blinded = True


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"S{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Site {o.code}")
    time_zone = "America/Los_Angeles"


def build_study(
    *,
    code="MAP",
    blinded=True,
    arms=("mdma", "placebo"),
    site_codes=("PDX", "NYC"),
    per_stratum=30,
    protocol_code="mapp-v1",
) -> tuple[Study, dict[str, Site]]:
    """A study with arms, criteria, a consent version, sites and an allocation list stratified by site."""
    admin = UserFactory(username="system-admin", is_superuser=True)
    study = StudyFactory(code=code, blinded=blinded, protocol_code=protocol_code)
    for arm in arms:
        Arm.objects.get_or_create(study=study, code=arm, defaults={"label": arm.title()})
    EligibilityCriterion.objects.get_or_create(
        study=study, code="INC_AGE", defaults={"kind": "inclusion", "text": "Aged 18-65"}
    )
    EligibilityCriterion.objects.get_or_create(
        study=study, code="EXC_PREG", defaults={"kind": "exclusion", "text": "Pregnant"}
    )
    sites = {}
    for site_code in site_codes:
        site = SiteFactory(
            code=site_code, time_zone="America/Los_Angeles" if site_code == "PDX" else "America/New_York"
        )
        site.studies.add(study)
        sites[site_code] = site
    with transaction.atomic():
        if not ConsentDocument.objects.filter(study=study).exists():
            services.consent_document_publish(study=study, version="1.0", title="Main consent", by=admin)
        services.allocation_list_generate(
            study=study,
            strata=list(site_codes),
            block_sizes=[2, 4],
            per_stratum=per_stratum,
            seed="test-seed",
            by=admin,
        )
    return study, sites


def staff(username: str, role: str, *sites: Site):
    user = UserFactory(username=username)
    with transaction.atomic():
        for site in sites:
            services.membership_grant(user=user, site=site, role=role, by=None)
    return user


ROLES = [r.value for r in Role]
