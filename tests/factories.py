"""factory_boy factories and fixed personas for permission tests.

Studies, sites, arms, criteria and consent versions are created through the participants services (as the system,
``by=None``), the only way in, so test data is audited like real data."""

from __future__ import annotations

from typing import Any

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


class StudyFactory(factory.Factory):
    """A study by code: the existing one, or a new one made by ``study_create``."""

    class Meta:
        model = Study

    code = "MAP"
    title = "MDMA-assisted therapy for PTSD (test)"
    protocol_code = "mapp-v1"
    blinded = True

    @classmethod
    def _create(cls, model_class: type[Study], *args: Any, **kwargs: Any) -> Study:
        existing = Study.objects.filter(code=kwargs["code"]).first()
        if existing is not None:
            return existing
        with transaction.atomic():
            return services.study_create(by=None, **kwargs)


class SiteFactory(factory.Factory):
    """A site by code: the existing one, or a new one made by ``site_create``."""

    class Meta:
        model = Site

    code = factory.Sequence(lambda n: f"S{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Site {o.code}")
    time_zone = "America/Los_Angeles"

    @classmethod
    def _create(cls, model_class: type[Site], *args: Any, **kwargs: Any) -> Site:
        existing = Site.objects.filter(code=kwargs["code"]).first()
        if existing is not None:
            return existing
        with transaction.atomic():
            return services.site_create(by=None, **kwargs)


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
    with transaction.atomic():
        for arm in arms:
            if not Arm.objects.filter(study=study, code=arm).exists():
                services.arm_create(study=study, code=arm, label=arm.title(), by=None)
        for criterion, kind, text in (("INC_AGE", "inclusion", "Aged 18-65"), ("EXC_PREG", "exclusion", "Pregnant")):
            if not EligibilityCriterion.objects.filter(study=study, code=criterion).exists():
                services.criterion_create(study=study, code=criterion, kind=kind, text=text, order=0, by=None)
    sites = {}
    for site_code in site_codes:
        site = SiteFactory(
            code=site_code, time_zone="America/Los_Angeles" if site_code == "PDX" else "America/New_York"
        )
        if not site.studies.filter(pk=study.pk).exists():
            with transaction.atomic():
                services.site_update(
                    site=site, studies=[*site.studies.all(), study], reason="joins the test study", by=None
                )
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


def unblind(study: Study, first, second, *, reason: str = "database locked"):
    """Unblind ``study`` through the service: the two approvals (e.g. an investigator's, then an unblinded
    statistician's). Returns the second call's state."""
    with transaction.atomic():
        state = services.study_unblind(study=study, by=first, reason=reason)
    assert not state.unblinded, "a single approval must leave the study blinded"
    with transaction.atomic():
        return services.study_unblind(study=study, by=second, reason=reason)


def unblind_by_api(api, code: str, first, second, *, reason: str = "database locked"):
    """Unblind the study ``code`` through the API: the first approval (202, still blinded), then the second. Returns
    the second response."""
    r = api(first).post(f"/api/v1/studies/{code}/unblind/", {"reason": reason})
    assert r.status_code == 202 and r.json()["unblinded"] is False, r.content
    assert not Study.objects.get(code=code).unblinded
    return api(second).post(f"/api/v1/studies/{code}/unblind/", {"reason": reason})
