"""KL divergence between tree-topology distributions.

``KL(p ‖ q) = Σ_T p(T) log(p(T) / q(T))`` (natural log) over the topologies of the
reference distribution ``p`` (METHODS.md §3). Topologies with ``q(T) = 0`` make the
divergence infinite; how to treat them is explicit:

* default (``eps=None``): the value is ``inf`` when any reference topology has
  ``q = 0``; the result also reports how many such topologies there are and their
  reference mass, and the finite part over the supported topologies;
* ``eps="machine"`` (or a float): clamp ``q`` at ``max(q, eps)``, the convention of
  the SBN paper's code (zcrabbit/sbn ``kl_div``, eps = float64 machine epsilon
  2.22e-16), under which every unsupported topology costs ``p(T)·(log p(T) − log eps)``.
  ``eps`` must lie in (0, 1), and the clamp must not invent probability: with
  ``q' = max(q, eps)``, ``KL(p ‖ q') ≥ −log Σ_T q'(T)`` (Gibbs' inequality for a
  sub-probability ``q'``), so an ``eps`` for which the clamped ``q'`` sums to more than
  ``1 + CLAMPED_MASS_TOL`` over the reference topologies (a negative "divergence") is
  refused rather than reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError

MACHINE_EPS = float(np.finfo(np.float64).eps)

#: How far the clamped model probabilities may sum above one before ``eps`` is refused:
#: the KL can then be negative by at most log(1 + 1e-9) ≈ 1e-9 nats, far below any
#: reported digit, while machine-eps clamping of up to ~10^6 unsupported topologies
#: (2.2e-10 added mass) and summation rounding stay inside.
CLAMPED_MASS_TOL = 1e-9


@dataclass
class KLResult:
    kl: float                  # the divergence under the chosen convention (nats)
    kl_supported: float        # Σ over topologies with q > 0 only
    n_unsupported: int         # reference topologies with q = 0
    unsupported_mass: float    # their reference probability
    eps: float | None
    n_reference: int

    def to_dict(self) -> dict:
        return {"kl": self.kl, "kl_supported": self.kl_supported,
                "n_unsupported": self.n_unsupported, "unsupported_mass": self.unsupported_mass,
                "eps": self.eps, "n_reference": self.n_reference}


def kl_divergence(p: np.ndarray, log_q: np.ndarray, *, eps: float | str | None = None,
                  normalize: bool = True) -> KLResult:
    """KL(p ‖ q) from reference probabilities ``p`` (U,) and ``log q`` (U,) of the same
    topologies. ``normalize`` rescales ``p`` to sum to one (reference samples such as
    6-decimal ``.trprobs`` weights are not exactly normalised)."""
    p = np.asarray(p, dtype=np.float64)
    log_q = np.asarray(log_q, dtype=np.float64)
    if p.shape != log_q.shape:
        raise PhyloError(f"p and log q differ in shape: {p.shape} vs {log_q.shape}")
    if np.any(p < 0) or not np.all(np.isfinite(p)) or p.sum() <= 0:
        raise PhyloError("reference probabilities must be finite, >= 0 and not all zero")
    if normalize:
        p = p / p.sum()
    if eps == "machine":
        eps = MACHINE_EPS
    pos = p > 0
    sup = pos & np.isfinite(log_q)
    uns = pos & ~np.isfinite(log_q)
    kl_sup = float(np.sum(p[sup] * (np.log(p[sup]) - log_q[sup])))
    if eps is None:
        kl = kl_sup if not uns.any() else float("inf")
    else:
        try:
            eps = float(eps)
        except (TypeError, ValueError):
            raise PhyloError(f"eps must be a number in (0, 1) or 'machine', got {eps!r}") \
                from None
        if not 0 < eps < 1:
            raise PhyloError(f"eps must be in (0, 1) (a floor for model probabilities; "
                             f"'machine' = {MACHINE_EPS:.3g}), got {eps}")
        lq = np.maximum(np.where(np.isfinite(log_q), log_q, -np.inf), np.log(eps))
        clamped_mass = float(np.sum(np.exp(lq[pos])))
        if clamped_mass > 1 + CLAMPED_MASS_TOL:
            raise PhyloError(
                f"eps={eps:g} is too large: the model probabilities clamped at eps sum to "
                f"{clamped_mass:.6g} > 1 over the reference topologies, which would make the "
                f"KL negative; use a smaller eps (e.g. 'machine')")
        kl = float(np.sum(p[pos] * (np.log(p[pos]) - lq[pos])))
    return KLResult(kl, kl_sup, int(uns.sum()), float(p[uns].sum()), eps, int(pos.sum()))
