"""Analysis-ready reads for statisticians: the comparison visits of a protocol, each participant's scores at them,
and the paired effect sizes computed from those (exports.analysis.stats, with SciPy)."""
