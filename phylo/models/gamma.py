"""Discrete-gamma rate heterogeneity (Yang 1994) and the +I invariant class.

Yang, Z. (1994) "Maximum likelihood phylogenetic estimation from DNA sequences with
variable rates over sites: approximate methods", J. Mol. Evol. 39:306-314.
The k categories have equal probability 1/k; each category's rate is the MEAN of
Gamma(shape=α, rate=α) restricted to that quantile interval (not the median), so
the mean rate over categories is exactly 1 — the convention of MrBayes, IQ-TREE,
BEAST and BEAGLE.
"""
from __future__ import annotations

import numpy as np

from .._kernels import models as _km


def discrete_gamma_rates(alpha: float, k: int) -> np.ndarray:
    """Mean rate of each of ``k`` equal-probability categories of Gamma(α, rate α).

    Returns float64 array, shape (k,), increasing, averaging exactly 1.
    With cut points x_j = F⁻¹(j/k), the mean of category j is
    k · [G(α+1, α x_{j+1}) − G(α+1, α x_j)] where G is the regularised lower
    incomplete gamma function (Yang 1994, eq. 10). Compiled
    (:func:`phylo._kernels.models.discrete_gamma_rates`, shared with the samplers);
    tests check it against SciPy's ``gammaincinv``/``gammainc`` to 1e-12.
    """
    return _km.discrete_gamma_rates(float(alpha), int(k))
