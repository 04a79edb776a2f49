"""Start-up checks: the shipped instrument files are valid, and every instrument a shipped protocol names exists in
the library with the respondent the protocol expects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import checks

from assessments.definitions import Instrument, InstrumentError, check_shipped_instruments, load_shipped_instruments


@checks.register("assessments")
def check_instruments(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems = check_shipped_instruments()
    errors: list[checks.CheckMessage] = [
        checks.Error(problem, hint="Fix the instrument file.", id="assessments.E001") for problem in problems
    ]
    if errors:
        return errors
    return check_protocol_instruments(load_shipped_instruments())


def check_protocol_instruments(library: Mapping[str, Instrument]) -> list[checks.CheckMessage]:
    from scheduling.protocol import ProtocolError, load_shipped_protocols

    errors: list[checks.CheckMessage] = []
    try:
        # Every code the files name is accepted here so that the protocols load; this check then names each code
        # missing from the library itself, with the visit that names it.
        protocols = load_shipped_protocols(known_instruments=_codes_named_by_protocols())
    except (ProtocolError, InstrumentError) as exc:
        return [checks.Error(f"shipped protocols do not load: {exc}", id="assessments.E002")]
    for protocol in protocols.values():
        for arm in protocol.arms.values():
            for visit in arm.visits:
                for due in visit.instruments:
                    where = f"protocol {protocol.code} arm {arm.code} visit {visit.code}"
                    instrument = library.get(due.code)
                    if instrument is None:
                        errors.append(
                            checks.Error(
                                f"{where}: instrument '{due.code}' is not in the instrument library",
                                hint="Add the instrument file to assessments/instruments/ or fix the protocol.",
                                id="assessments.E003",
                            )
                        )
                    elif instrument.respondent != due.respondent:
                        errors.append(
                            checks.Error(
                                f"{where}: instrument '{due.code}' is {instrument.respondent}-rated but the protocol "
                                f"says '{due.respondent}'",
                                id="assessments.E004",
                            )
                        )
    # The same visit appears once per arm: report each problem once.
    unique = {e.msg: e for e in errors}
    return list(unique.values())


def _codes_named_by_protocols() -> set[str]:
    import json

    from scheduling.protocol import shipped_protocol_paths

    codes: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "instruments" and isinstance(value, list):
                    codes.update(i["code"] for i in value if isinstance(i, dict) and isinstance(i.get("code"), str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in shipped_protocol_paths():
        try:
            walk(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # scheduling's own checks report unreadable protocol files
    return codes


@checks.register("assessments", deploy=True)
def check_instrument_texts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: a Warning (assessments.W001) for each active study, self-report instrument and language in
    use without a text pack: its questionnaires are held (never shown with neutral labels), so participants in that
    language are not asked them. The demo's placeholder packs do not count.

    CI runs this against an empty database that may not be migrated: without the tables there is nothing to check."""
    from django.db import DatabaseError, connection

    from assessments.models import InstrumentText, InstrumentVersion
    from participants.models import ContactDetails, Participant, Study

    needed = {m._meta.db_table for m in (InstrumentText, InstrumentVersion, Study, Participant, ContactDetails)}
    try:
        if not needed <= set(connection.introspection.table_names()):
            return []
        return _missing_text_warnings()
    except DatabaseError:
        return []  # no database to read (the check must not fail a build that has none)


def _missing_text_warnings() -> list[checks.CheckMessage]:
    from assessments import texts
    from assessments.library import instrument_get
    from participants import selectors as participant_selectors
    from scheduling import selectors as scheduling_selectors

    available = texts.validated_text_available()
    warnings: list[checks.CheckMessage] = []
    for study, languages in participant_selectors.studies_active_with_languages():
        protocol = scheduling_selectors.study_protocol(study.protocol_code)
        if protocol is None:
            continue
        codes = sorted(
            {due.code for arm in protocol.arms.values() for visit in arm.visits for due in visit.instruments}
        )
        for code in codes:
            try:
                instrument = instrument_get(code)
            except KeyError:
                continue  # assessments.E003 names it
            if instrument.respondent != "self":
                continue
            for language in sorted(languages):
                if (code, language) not in available:
                    warnings.append(
                        checks.Warning(
                            f"study {study.code}: self-report instrument {code} v{instrument.version} has no text pack "
                            f"in '{language}': its questionnaires are held for participants in that language",
                            hint="Load the site's validated wording with `manage.py load_instrument_text FILE` "
                            "(docs/instruments.md, 'Text packs').",
                            id="assessments.W001",
                        )
                    )
    return warnings
