"""Tests of the vectorisable natural log (phylo._kernels.pruning.fast_log) against np.log."""
from __future__ import annotations

import numpy as np

from phylo._kernels import pruning

#: fdlibm's log is within 1 ulp; relative to |ln x| that is ≤ 2.3e-16 away from x ≈ 1
#: (where ln x ≈ x − 1 keeps full relative precision) — the brief's bound is 4e-16.
FAST_LOG_REL_TOL = 4e-16
TINY = np.finfo(np.float64).tiny


def _fast(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pruning.fast_log_array(np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def _max_rel(x: np.ndarray) -> float:
    ref = np.log(x)
    got = _fast(x)
    nz = ref != 0
    assert np.all(got[~nz] == 0.0)
    return float(np.max(np.abs(got[nz] - ref[nz]) / np.abs(ref[nz])))


def test_whole_double_range(rng):
    x = np.exp(rng.uniform(-708, 709, 400_000))
    assert _max_rel(x) <= FAST_LOG_REL_TOL
    x = np.ldexp(rng.uniform(0.5, 1.0, 400_000), rng.integers(-1021, 1025, 400_000))
    assert _max_rel(x) <= FAST_LOG_REL_TOL


def test_near_one_and_reduction_boundaries(rng):
    x = np.concatenate([1.0 + rng.uniform(-1e-3, 1e-3, 100_000),
                        1.0 + rng.uniform(-1e-12, 1e-12, 10_000),
                        np.sqrt(0.5) * (1 + rng.uniform(-1e-9, 1e-9, 10_000)),
                        np.sqrt(2.0) * (1 + rng.uniform(-1e-9, 1e-9, 10_000)),
                        rng.uniform(0.25, 4.0, 100_000),
                        [np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0), 2.0, 0.5, 4.0,
                         np.finfo(np.float64).max]])
    assert _max_rel(x) <= FAST_LOG_REL_TOL


def test_small_normals_and_subnormals(rng):
    x = np.concatenate([TINY * rng.uniform(1.0, 1e6, 100_000),
                        [TINY, np.nextafter(TINY, 1.0)],
                        TINY * rng.uniform(0.0, 1.0, 100_000) + 5e-324,
                        [5e-324, 1e-310, np.nextafter(TINY, 0.0)]])
    assert _max_rel(x) <= FAST_LOG_REL_TOL


def test_special_values():
    got = _fast(np.array([0.0, -0.0, np.inf, -1.0, np.nan, -np.inf]))
    assert got[0] == -np.inf and got[1] == -np.inf and got[2] == np.inf
    assert np.all(np.isnan(got[3:]))
    assert _fast(np.array([1.0]))[0] == 0.0
