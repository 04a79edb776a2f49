"""The pure parts of the analysis reads: the comparison visits of the shipped protocols, staff pseudonyms, and the
paired statistics' edge cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from exports.analysis.stats import dz_confidence_interval, paired_summary
from exports.analysis.visits import comparison_visits
from exports.pseudonyms import DYAD, RATER, key_text, pseudonym
from scheduling.protocol import SHIPPED_DIR, load_protocol_file, load_shipped_protocols, primary_comparison


def test_the_shipped_protocols_compare_baseline_with_their_endpoint_in_every_arm():
    protocols = load_shipped_protocols()
    assert comparison_visits(protocols["mapp-v1"]) == (("BASELINE", "ENDPOINT"),)
    # SAMATI-style: the first assessment every arm has (the delayed arm's WAIT_END is its own, so never chosen).
    assert comparison_visits(protocols["samati-v1"]) == (("BASELINE", "POST"),)


def test_pseudonyms_are_stable_keyed_and_unrelated_across_studies(settings):
    settings.EXPORT_PSEUDONYM_KEY = "key-one"
    dyad = pseudonym(DYAD, "MAP", [12, 7])
    assert re.fullmatch(r"D-[0-9a-f]{10}", dyad)
    assert pseudonym(DYAD, "MAP", [7, 12]) == dyad  # a dyad is a set
    assert pseudonym(DYAD, "SAM", [7, 12]) != dyad  # another study: unrelated id
    assert pseudonym(RATER, "MAP", [7]) != pseudonym(DYAD, "MAP", [7])
    settings.EXPORT_PSEUDONYM_KEY = "key-two"
    assert pseudonym(DYAD, "MAP", [12, 7]) != dyad  # without the key, no way back to the user ids
    assert key_text(DYAD, 3, [12, 7]) == "D:3:7,12"


def test_paired_summary_edge_cases_leave_figures_empty():
    assert paired_summary([], []).n == 0 and paired_summary([], []).d_z is None
    one = paired_summary([1.0], [3.0])
    assert (one.n, one.mean_change, one.sd_change, one.d_z, one.p_value) == (1, 2.0, None, None, None)
    constant = paired_summary([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert constant.sd_change == 0.0 and constant.d_z is None and constant.ci_low is None


def test_the_interval_is_the_noncentral_t_one():
    rng = np.random.default_rng(7)
    before = rng.normal(20, 5, 30)
    after = before - rng.normal(4, 6, 30)
    s = paired_summary(before, after)
    change = after - before
    assert s.d_z == pytest.approx(change.mean() / change.std(ddof=1), abs=1e-12)
    assert s.p_value == pytest.approx(stats.ttest_rel(after, before).pvalue, abs=1e-12)
    t, n = s.d_z * math.sqrt(30), 30
    assert stats.nct.cdf(t, n - 1, s.ci_low * math.sqrt(n)) == pytest.approx(0.975, abs=1e-10)
    assert stats.nct.cdf(t, n - 1, s.ci_high * math.sqrt(n)) == pytest.approx(0.025, abs=1e-10)
    # Close to the width of the normal approximation at n = 30 (a sanity check, not the method).
    se = math.sqrt(1 / n + s.d_z**2 / (2 * n))
    assert s.ci_high - s.ci_low == pytest.approx(2 * 1.959964 * se, rel=0.1)
    assert dz_confidence_interval(100.0, 2) == (None, None)


@pytest.mark.parametrize(
    ("code", "pairs"),
    [
        ("mapp-v1", (("BASELINE", "ENDPOINT"),)),
        ("samati-v1", (("BASELINE", "POST"),)),
    ],
)
def test_comparison_visits_before_the_declaration(code, pairs):
    assert comparison_visits(load_protocol_file(SHIPPED_DIR / f"{code}.json")) == pairs


@pytest.mark.parametrize("code", ["mapp-v2", "samati-v2"])
def test_comparison_visits_follow_the_declared_primary_comparison(code):
    protocol = load_protocol_file(SHIPPED_DIR / f"{code}.json")
    declared = primary_comparison(protocol)
    assert declared is not None and declared.declared
    pairs = comparison_visits(protocol)
    # Every arm's declared pair is offered, once, and an endpoint fewer arms have comes before one more arms have.
    assert set(pairs) == {(c.baseline, c.endpoint) for c in declared.arms.values()}
    assert len(pairs) == len(set(pairs))
    counts = [sum(1 for arm in protocol.arms.values() if end in arm.codes) for _, end in pairs]
    assert counts == sorted(counts)
