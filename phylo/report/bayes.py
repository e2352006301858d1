"""Log Bayes factors against the best candidate and their Kass–Raftery reading.

Pure functions on plain numbers: no I/O, no plotting, no randomness.

Conventions
-----------
All logarithms are natural. For candidates with log marginal likelihoods
``ln Z_i`` (nats), the best candidate ``b`` has the largest ``ln Z``; the log Bayes
factor *of the best against candidate i* is

    ln BF_{b,i} = ln Z_b - ln Z_i  >= 0,

so the best candidate has ``ln BF = 0`` and every other one a positive number that
measures the evidence *against* it. Kass & Raftery (1995, J. Am. Stat. Assoc.
90:773–795, §3.2) read the evidence on the scale ``2 ln BF``:

==============  ==========================================
``2 ln BF``     evidence for the better candidate
==============  ==========================================
0 to 2          not worth more than a bare mention
2 to 6          positive
6 to 10         strong
above 10        very strong
==============  ==========================================

A boundary value belongs to the stronger category (``2 ln BF = 2`` is "positive").
The standard error of a difference of two independent estimates is
``sqrt(se_b**2 + se_i**2)``; a difference smaller than :data:`RESOLVED_Z` times that
error is flagged as *not resolved* by the estimates, whatever its category.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import ReportError

#: Kass–Raftery category boundaries on the 2·ln BF scale (lower bounds), weakest first.
KASS_RAFTERY: tuple[tuple[float, str], ...] = (
    (0.0, "not worth more than a bare mention"),
    (2.0, "positive"),
    (6.0, "strong"),
    (10.0, "very strong"),
)

#: A log-BF difference is "resolved" when it exceeds this many standard errors of the
#: difference (about a two-sided 95 % normal interval).
RESOLVED_Z = 1.96


def kass_raftery(two_ln_bf: float) -> str:
    """Kass–Raftery category of the evidence ``2 ln BF`` (natural log, ``>= 0``).

    Negative values are read by their absolute value (the evidence is symmetric: it
    then favours the other candidate). NaN gives ``"undetermined"``.
    """
    x = float(two_ln_bf)
    if math.isnan(x):
        return "undetermined"
    x = abs(x)
    label = KASS_RAFTERY[0][1]
    for lower, name in KASS_RAFTERY:
        if x >= lower:
            label = name
    return label


@dataclass(frozen=True)
class BayesFactorRow:
    """One candidate against the best.

    Attributes
    ----------
    candidate: the candidate's name.
    rank: 1 for the best, 2 for the runner-up, ... (ties keep input order).
    log_marginal_likelihood: ``ln Z_i`` (nats).
    std_error: its standard error (nats; NaN when unknown).
    log_bayes_factor: ``ln Z_best - ln Z_i`` (nats, ``>= 0``; 0 for the best).
    log_bayes_factor_se: standard error of that difference (0 for the best).
    two_ln_bf: ``2 * log_bayes_factor``, the Kass–Raftery scale.
    interpretation: the Kass–Raftery category of ``two_ln_bf`` in favour of the
        best ("best" for the best itself).
    resolved: whether ``log_bayes_factor > RESOLVED_Z * log_bayes_factor_se``
        (None for the best, or when the error is unknown).
    """

    candidate: str
    rank: int
    log_marginal_likelihood: float
    std_error: float
    log_bayes_factor: float
    log_bayes_factor_se: float
    two_ln_bf: float
    interpretation: str
    resolved: bool | None

    def as_dict(self) -> dict:
        return {
            "candidate": self.candidate, "rank": self.rank,
            "log_marginal_likelihood": self.log_marginal_likelihood,
            "std_error": self.std_error, "log_bayes_factor": self.log_bayes_factor,
            "log_bayes_factor_se": self.log_bayes_factor_se, "two_ln_bf": self.two_ln_bf,
            "interpretation": self.interpretation, "resolved": self.resolved,
        }


def bayes_factors(log_marginal_likelihoods: Mapping[str, float],
                  std_errors: Mapping[str, float] | None = None) -> list[BayesFactorRow]:
    """Log Bayes factors of the best candidate against each candidate.

    Parameters
    ----------
    log_marginal_likelihoods: ``{candidate: ln Z}`` in nats; at least one finite value.
    std_errors: ``{candidate: standard error of ln Z}`` (nats); missing or NaN
        entries make the difference's error NaN and ``resolved`` None.

    Returns
    -------
    One :class:`BayesFactorRow` per candidate, best first (descending ``ln Z``;
    candidates with a non-finite ``ln Z`` last, with NaN factors and
    interpretation "undetermined").

    Raises :class:`phylo.errors.ReportError` (a ``ValueError``) when there is no
    candidate or none has a finite ``ln Z``.
    """
    if not log_marginal_likelihoods:
        raise ReportError("bayes_factors needs at least one candidate")
    std_errors = dict(std_errors or {})
    names = list(log_marginal_likelihoods)
    values = {n: float(log_marginal_likelihoods[n]) for n in names}
    finite = [n for n in names if math.isfinite(values[n])]
    if not finite:
        raise ReportError("no candidate has a finite log marginal likelihood")
    order = sorted(finite, key=lambda n: -values[n]) + [n for n in names if n not in finite]
    best = order[0]
    se_best = float(std_errors.get(best, math.nan))
    rows: list[BayesFactorRow] = []
    for rank, name in enumerate(order, 1):
        se = float(std_errors.get(name, math.nan))
        if name == best:
            rows.append(BayesFactorRow(name, rank, values[name], se, 0.0, 0.0, 0.0,
                                       "best", None))
            continue
        lbf = values[best] - values[name] if name in finite else math.nan
        lbf_se = math.hypot(se_best, se) if math.isfinite(se_best) and math.isfinite(se) \
            else math.nan
        resolved = (bool(lbf > RESOLVED_Z * lbf_se)
                    if math.isfinite(lbf) and math.isfinite(lbf_se) else None)
        rows.append(BayesFactorRow(name, rank, values[name], se, lbf, lbf_se, 2.0 * lbf,
                                   kass_raftery(2.0 * lbf), resolved))
    return rows


def summarize_repeats(values: Sequence[float],
                      std_errors: Sequence[float] | None = None) -> tuple[float, float, float]:
    """Combine repeated estimates of one ``ln Z``.

    Returns ``(mean, std_error, sd_between_repeats)`` in nats. With two or more
    finite repeats the standard error is the between-repeat standard deviation over
    ``sqrt(R)`` (the error of the mean, honest even when an estimator's own error
    is optimistic); with a single repeat it is the estimator's own ``std_error``
    (NaN when it reports none) and the between-repeat sd is NaN.
    """
    xs = [float(v) for v in values if math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan, math.nan
    mean = math.fsum(xs) / len(xs)
    if len(xs) >= 2:
        sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        return mean, sd / math.sqrt(len(xs)), sd
    own = math.nan
    if std_errors:
        finite_se = [float(s) for s in std_errors if s is not None and math.isfinite(float(s))]
        if finite_se:
            own = finite_se[0]
    return mean, own, math.nan
