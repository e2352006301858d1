"""The tip-state lookup intrinsics (phylo._kernels.lookup) and the vectorisable exp
(phylo._kernels.pruning.fast_exp) against plain NumPy.

The lookups are emitted as AVX-512 permutes where the compile target has AVX-512 and
as scalar loads elsewhere; both paths are checked (the second in a subprocess with
NUMBA_CPU_NAME=generic and a private cache directory). Lookups and products are
exact (one rounding per product), so the tolerance is 0; the fused matrix-vector
variants round in a different order than NumPy's matmul: 1e-14 relative."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from phylo._kernels import pruning
from phylo._kernels.lookup import (lookup1, lookup1_matvec, lookup1_matvec_f81, lookup1_mul,
                                   lookup2)

MATVEC_RTOL = 1e-14


@njit(cache=False)
def _run(kind, out, ta, ca, tb, cb, xb, pb):
    if kind == 0:
        lookup1(out, ta, ca)
    elif kind == 1:
        lookup1_mul(out, ta, ca)
    elif kind == 2:
        lookup2(out, ta, ca, tb, cb)
    elif kind == 3:
        lookup1_matvec(out, ta, ca, xb, pb)
    else:
        lookup1_matvec_f81(out, ta, ca, xb, pb)


def check_all_lookups(seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for npat in (1, 7, 8, 9, 16, 935):
        big = rng.random((3, 4, npat))
        out = big[1]                       # a row-strided view inside a larger array
        ta, tb = rng.random((4, 16)), rng.random((4, 16))
        ca = rng.integers(0, 16, npat).astype(np.uint8)
        cb = rng.integers(0, 16, npat).astype(np.uint8)
        xb = rng.random((2, 4, npat))[1]
        pb = rng.random((4, 4))
        q, a = rng.random(4), 0.3
        pf = a * np.eye(4) + np.ones((4, 1)) * q[None, :]
        before = big.copy()
        _run(0, out, ta, ca, tb, cb, xb, pb)
        assert np.array_equal(out, ta[:, ca])
        _run(1, out, ta, ca, tb, cb, xb, pb)
        assert np.array_equal(out, ta[:, ca] * ta[:, ca])
        _run(2, out, ta, ca, tb, cb, xb, pb)
        assert np.array_equal(out, ta[:, ca] * tb[:, cb])
        _run(3, out, ta, ca, tb, cb, xb, pb)
        np.testing.assert_allclose(out, ta[:, ca] * (pb @ xb), rtol=MATVEC_RTOL, atol=0)
        _run(4, out, ta, ca, tb, cb, xb, pf)
        np.testing.assert_allclose(out, ta[:, ca] * (pf @ xb), rtol=MATVEC_RTOL, atol=0)
        # the neighbouring rows of the parent array are untouched
        assert np.array_equal(big[0], before[0]) and np.array_equal(big[2], before[2])


def test_lookups_on_this_cpu():
    check_all_lookups()


def test_codes_are_masked_to_four_bits():
    out = np.empty((4, 9))
    ta = np.arange(64, dtype=np.float64).reshape(4, 16)
    codes = np.array([16, 17, 31, 255, 0, 1, 15, 200, 3], dtype=np.uint8)
    _run(0, out, ta, codes, ta, codes, out, np.eye(4))
    assert np.array_equal(out, ta[:, codes & 15])


def test_lookups_without_avx512(tmp_path):
    """The scalar fallback, compiled for a generic x86-64 target."""
    env = dict(os.environ, NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(tmp_path))
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; sys.path.insert(0, %r); sys.path.insert(0, %r); "
            "import test_lookup as t; t.check_all_lookups(1)" % (str(root), str(root / "tests")))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]


# --- fast_exp -------------------------------------------------------------------------
def _fast_exp(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pruning.fast_exp_array(np.ascontiguousarray(x, dtype=np.float64), out)
    return out


@pytest.mark.parametrize("lo,hi", [(-745.0, 709.0), (-1.0, 1.0), (-1e-9, 1e-9), (-40.0, 0.0)])
def test_fast_exp_within_one_ulp(lo, hi, rng):
    x = rng.uniform(lo, hi, 200_000)
    ref = np.exp(x)
    got = _fast_exp(x)
    normal = ref >= np.finfo(np.float64).tiny
    # fdlibm's exp and NumPy's are each within 1 ulp of e^x: 2 ulp apart at most
    assert np.all(np.abs(got[normal] - ref[normal]) <= 2 * np.spacing(ref[normal]))
    # subnormal results: within one subnormal step
    assert np.all(np.abs(got[~normal] - ref[~normal]) <= 5e-324)


def test_fast_exp_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 709.78, 710.0, -745.0, -746.0, -1e300])
    got = _fast_exp(x)
    assert got[0] == 1.0 and got[1] == 1.0 and got[2] == np.inf and got[3] == 0.0
    assert np.isnan(got[4])
    with np.errstate(over="ignore"):
        ref = np.exp(x[5:])
    np.testing.assert_array_equal(got[5:], ref)
