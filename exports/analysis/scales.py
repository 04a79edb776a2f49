"""The scales of the per-participant dataset and the effect sizes: the outcomes of the trials this project serves
(CAPS-5 and PCL-5 for PTSD, LSAS for social anxiety) and the Self-Compassion Scale with CS, UCS and its six
subscales (the seed paper's outcomes). Codes are the instrument definitions' scale codes, a contract."""

from __future__ import annotations

ANALYSIS_SCALES: tuple[tuple[str, str], ...] = (
    ("CAPS5", "total"),
    ("PCL5", "total"),
    ("LSAS", "total"),
    ("LSAS_SR", "total"),
    ("SCS", "total"),
    ("SCS", "cs"),
    ("SCS", "ucs"),
    ("SCS", "self_kindness"),
    ("SCS", "self_judgment"),
    ("SCS", "common_humanity"),
    ("SCS", "isolation"),
    ("SCS", "mindfulness"),
    ("SCS", "over_identification"),
)
# Clinician-rated instruments among them: the per-participant dataset names their raters.
RATED_INSTRUMENTS: tuple[str, ...] = ("CAPS5", "LSAS")


def variable(instrument: str, scale: str) -> str:
    """The scale's name in the exports (as in the wide scores): ``<INSTRUMENT>_<scale>``."""
    return f"{instrument}_{scale}"


VARIABLES: dict[str, tuple[str, str]] = {variable(i, s): (i, s) for i, s in ANALYSIS_SCALES}
