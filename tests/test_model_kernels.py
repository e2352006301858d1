"""The compiled model numerics (phylo/_kernels/models.py) and the model moves of the
compiled MCMC loop, against independent references.

* Discrete-Γ mean rates: SciPy's ``gammaincinv``/``gammainc`` (Yang 1994 eq. 10 written
  directly with SciPy, not through our code), shapes 0.05 … 50.
* Eigensystem and rate matrix: NumPy's ``eigh`` of the symmetrised matrix (the formula
  written here again) and the matrix exponential ``scipy.linalg.expm``; frequencies
  down to 1e-4.
* u → packed model: the Python path (priors' maps, ``Model.replace``, ``pack_model``).
* Compiled model prior: the prior objects of ``phylo.marginal.priors``.
* Chains with free model parameters (all moves in one compiled loop): the same chain as
  the Python reference loop from the same seed, reproducible, and identical across 1
  and 2 threads.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.special import gammainc, gammaincinv

from phylo._kernels import models as km
from phylo._kernels.pruning import pack_model
from phylo.io.newick import parse_newick
from phylo.likelihood.simulate import simulate_alignment
from phylo.marginal import Problem
from phylo.marginal.mcmc import Sampler
from phylo.models import Model

#: Agreement asked of the compiled numerics with the SciPy/NumPy path (relative);
#: observed ≤ 7e-14 for the Γ rates, ≤ 1e-14 for P(t).
MODEL_TOL = 1e-12
#: Chains of the compiled loop and of the Python loop agree to this (their log priors
#: and log-likelihoods differ in the last bits only, so every decision is the same).
CHAIN_TOL = 1e-9
#: log L of the two paths at extreme u (exchangeabilities spanning 10^6, π down to
#: 1e-4): the eigensystem's conditioning turns last-bit differences of Q into ~1e-10
#: relative (observed 1.7e-10 on 300 sites).
EXTREME_LL_TOL = 1e-9
#: Relative accuracy of P(a, x) where P < 1e-30 (see the test).
FAR_TAIL_TOL = 1e-10

ROOT = Path(__file__).resolve().parents[1]


def scipy_gamma_rates(alpha: float, k: int) -> np.ndarray:
    """Yang (1994) mean rates straight from SciPy (the pre-compiled implementation)."""
    q = np.arange(1, k) / k
    cuts = gammaincinv(alpha, q)
    upper = np.concatenate([gammainc(alpha + 1.0, cuts), [1.0]])
    lower = np.concatenate([[0.0], upper[:-1]])
    rates = (upper - lower) * k
    return rates / rates.mean()


def shapes() -> np.ndarray:
    rng = np.random.default_rng(11)
    edges = [0.05, 0.050001, 0.0999, 0.5, 0.999999, 1.0, 1.000001, 9.99, 10.0, 10.01, 49.9, 50.0]
    return np.concatenate([edges, np.exp(rng.uniform(np.log(0.05), np.log(50.0), 300))])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8, 16])
def test_gamma_rates_equal_scipy(k):
    worst = 0.0
    for alpha in shapes():
        ours = km.discrete_gamma_rates(float(alpha), k)
        ref = scipy_gamma_rates(alpha, k) if k > 1 else np.ones(1)
        err = np.max(np.abs(ours - ref) / np.abs(ref))
        worst = max(worst, err)
        assert err <= MODEL_TOL, (alpha, k, ours, ref)
        assert ours.mean() == pytest.approx(1.0, abs=1e-14)
        assert np.all(np.diff(ours) > 0)
    assert worst <= MODEL_TOL


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 1.05, 4.0, 50.0, 51.0])
def test_incomplete_gamma_and_inverse_equal_scipy(a):
    for p in [1e-12, 1e-6, 0.01, 0.25, 0.5, 0.75, 0.99]:
        x = km.gamma_p_inverse(a, p)
        assert x == pytest.approx(gammaincinv(a, p), rel=1e-13)
        assert km.gamma_p(a, x) == pytest.approx(p, rel=1e-14)
    for x in [1e-30, 1e-5, 0.5, a, a + 1.0, 2 * a + 3, 200.0]:
        ref = gammainc(a, x)
        # far in the lower tail (P < 1e-30: x^a e^{-x}/Γ(a) with an exponent of -100s)
        # the exponent's rounding leaves ~1e-12 relative; such P never reach the rates
        tol = 1e-13 if ref > 1e-30 else FAR_TAIL_TOL
        assert km.gamma_p(a, x) == pytest.approx(ref, rel=tol, abs=1e-300)
    assert km.gamma_p_inverse(a, 0.0) == 0.0 and km.gamma_p_inverse(a, 1.0) == np.inf


def random_reversible(rng: np.random.Generator, tiny: bool) -> tuple[np.ndarray, np.ndarray]:
    exch = np.exp(rng.normal(0, 1.5, 6))
    exch = exch / exch[5]
    pi = rng.dirichlet(np.ones(4))
    if tiny:                               # frequencies near 0 (the empirical floor)
        pi[rng.integers(4)] = 1e-4
        pi = pi / pi.sum()
    return exch, pi


@pytest.mark.parametrize("tiny", [False, True])
def test_eigensystem_equals_numpy_and_expm(tiny):
    rng = np.random.default_rng(5 + tiny)
    for _ in range(200):
        exch, pi = random_reversible(rng, tiny)
        # the rate matrix written again with NumPy
        r = np.zeros((4, 4))
        r[np.triu_indices(4, 1)] = exch
        r = r + r.T
        qref = r * pi[None, :]
        np.fill_diagonal(qref, -qref.sum(axis=1))
        qref /= -np.dot(pi, np.diag(qref))
        q = np.empty((4, 4))
        km.rate_matrix_into(exch, pi, q)
        np.testing.assert_allclose(q, qref, rtol=MODEL_TOL, atol=MODEL_TOL * np.abs(qref).max())
        lam, v, vinv = np.empty(4), np.empty((4, 4)), np.empty((4, 4))
        km.reversible_eigen_into(q, pi, lam, v, vinv)
        s = np.sqrt(pi)
        sym = (s[:, None] * qref) / s[None, :]
        np.testing.assert_allclose(np.sort(lam), np.sort(np.linalg.eigvalsh((sym + sym.T) / 2)),
                                   atol=MODEL_TOL * np.abs(lam).max())
        assert np.sum(lam == 0.0) == 1
        np.testing.assert_allclose(v @ vinv, np.eye(4), atol=MODEL_TOL)
        for t in (1e-3, 0.1, 1.0, 10.0):
            p = v @ np.diag(np.exp(lam * t)) @ vinv
            np.testing.assert_allclose(p, expm(qref * t), rtol=0, atol=MODEL_TOL)


def test_packed_model_equals_python_packing():
    rng = np.random.default_rng(3)
    for _ in range(100):
        exch, pi = random_reversible(rng, bool(rng.integers(2)))
        alpha = float(np.exp(rng.uniform(np.log(0.05), np.log(50))))
        pinv = float(rng.uniform(0, 0.9))
        m = Model.create("GTR", exchangeabilities=exch, frequencies=pi, gamma_categories=4,
                         gamma_shape=alpha, pinv=pinv)
        lam, v, vinv = m.eigen()
        ref = pack_model(lam, v, vinv, m.category_rates(), m.category_weights(), m.frequencies,
                         m.pinv, m.rate_matrix())
        out = np.empty(km.packed_length(4))
        km.pack_model_into(lam, v, vinv, m.category_rates(), m.category_weights(), m.frequencies,
                           m.pinv, m.rate_matrix(), out)
        np.testing.assert_array_equal(out, ref)
    # the F81 test agrees too (JC: every off-diagonal Q_ij / π_j equal)
    m = Model.from_string("F81+F{0.1,0.2,0.3,0.4}")
    lam, v, vinv = m.eigen()
    out = np.empty(km.packed_length(1))
    km.pack_model_into(lam, v, vinv, m.category_rates(), m.category_weights(), m.frequencies,
                       m.pinv, m.rate_matrix(), out)
    assert out[-1] == 1.0


def small_problem(model: str) -> Problem:
    tree = parse_newick("((A:0.1,B:0.2):0.05,(C:0.15,D:0.1):0.02,E:0.3);")
    aln = simulate_alignment(tree, "GTR{1,3,0.5,1,4}+F{0.2,0.3,0.3,0.2}+I{0.2}+G4{0.7}", 300,
                             seed=2)
    return Problem(aln, tree, model)


@pytest.mark.parametrize("model", ["K80", "HKY+G4", "GTR+G4", "GTR+I+G4", "F81+I"])
def test_unconstrained_to_packed_and_prior_equal_python_path(model):
    """u → packed model and log p(u) in compiled code equal the Python path (priors'
    maps, Model, pack_model, the prior objects), including extreme u."""
    problem = small_problem(model)
    rng = np.random.default_rng(4)
    u0 = problem.initial_point()[problem.n_branches:]
    t = np.full(problem.n_branches, 0.1)
    for scale in (0.1, 1.0, 4.0):
        for u in u0 + rng.normal(0, scale, (30, u0.size)):
            packed, inv = problem.kernel_model(u)
            m = problem.model_at(u)
            rpacked, rinv = problem.likelihood.kernel_model(m)
            # compare what the kernels compute from them (eigenvectors of a degenerate
            # eigenspace may differ): Q, π, rates, weights, pinv, the +I likelihoods,
            # and P(t) = V e^{Λ t} V⁻¹
            from phylo._kernels.pruning import unpack_model
            a, b = unpack_model(packed), unpack_model(rpacked)
            for key in ("q", "pi", "rates", "weights"):
                np.testing.assert_allclose(a[key], b[key], rtol=MODEL_TOL, atol=1e-15)
            assert a["pinv"] == pytest.approx(b["pinv"], rel=MODEL_TOL, abs=1e-300)
            assert a["f81"] == b["f81"]
            np.testing.assert_allclose(inv, rinv, rtol=MODEL_TOL, atol=0)
            for tt in (0.01, 0.5):
                pa = a["v"] @ np.diag(np.exp(a["lam"] * tt)) @ a["vinv"]
                pb = b["v"] @ np.diag(np.exp(b["lam"] * tt)) @ b["vinv"]
                np.testing.assert_allclose(pa, pb, atol=MODEL_TOL)
            assert problem._model_log_prior(u) == pytest.approx(
                problem._model_log_prior_reference(u), rel=MODEL_TOL, abs=MODEL_TOL)
            ll = problem._log_likelihood(t, u)
            assert ll == pytest.approx(problem.likelihood.with_model(m).log_likelihood(t),
                                       rel=MODEL_TOL if scale < 4 else EXTREME_LL_TOL)
    # a batch equals its rows bit for bit
    us = u0 + rng.normal(0, 1.0, (17, u0.size))
    ts = np.exp(rng.normal(-2, 0.5, (17, problem.n_branches)))
    batch = problem._log_likelihood_batch(ts, us)
    rows = np.array([problem._log_likelihood(ti, ui) for ti, ui in zip(ts, us)])
    np.testing.assert_array_equal(batch, rows)


def test_refused_parameters_give_nan_in_batches_and_errors_alone():
    problem = small_problem("GTR+I+G4")
    u = problem.initial_point()[problem.n_branches:].copy()
    u[-1] = 800.0                       # pinv = expit(800) = 1: refused by the model
    from phylo.errors import ModelError
    with pytest.raises(ModelError):
        problem.kernel_model(u)
    t = np.full((2, problem.n_branches), 0.1)
    out = problem._log_likelihood_batch(t, np.stack([u, problem.initial_point()[problem.n_branches:]]))
    assert np.isnan(out[0]) and np.isfinite(out[1])
    assert problem._model_log_prior(u) == -np.inf


@pytest.mark.parametrize("model", ["HKY+G4", "GTR+I+G4"])
def test_compiled_chain_follows_the_python_reference_chain(model):
    """Every move (branches, tree length, κ/frequencies/exchangeabilities/α/pinv) in the
    compiled loop: the same chain as the Python loop over the problem's methods from the
    same seed, and recorded log L / log prior equal to fresh evaluations."""
    problem = small_problem(model)
    traces = {}
    for backend in ("numba", "python"):
        sampler = Sampler(problem, backend=backend)
        state = sampler.initial_state()
        res = sampler.run(state, beta=0.7, n_samples=150, thin=problem.dim, burnin=20,
                          rng=np.random.default_rng(9), store_z=True)
        traces[backend] = res
    a, b = traces["numba"], traces["python"]
    np.testing.assert_allclose(a.loglik, b.loglik, rtol=CHAIN_TOL)
    np.testing.assert_allclose(a.logprior, b.logprior, rtol=CHAIN_TOL, atol=CHAIN_TOL)
    np.testing.assert_allclose(a.z, b.z, rtol=CHAIN_TOL, atol=CHAIN_TOL)
    assert np.all(a.acceptance[problem.n_branches:problem.dim] > 0.05)   # model moves happen
    for z, ll, lp in zip(a.z[::10], a.loglik[::10], a.logprior[::10]):
        assert problem.log_likelihood(z) == pytest.approx(ll, rel=1e-13)
        assert problem.log_prior(z) == pytest.approx(lp, rel=1e-12, abs=1e-12)


def test_chain_reproducible_from_seed():
    problem = small_problem("GTR+I+G4")
    runs = []
    for _ in range(2):
        sampler = Sampler(problem)
        res = sampler.run(sampler.initial_state(), beta=1.0, n_samples=100, thin=problem.dim,
                          burnin=10, rng=np.random.default_rng(3), store_z=True)
        runs.append(res)
    np.testing.assert_array_equal(runs[0].z, runs[1].z)
    np.testing.assert_array_equal(runs[0].loglik, runs[1].loglik)


THREAD_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from phylo.likelihood.simulate import simulate_alignment
    from phylo.marginal import Problem
    from phylo.marginal.mcmc import Sampler
    from phylo.trees.random import random_tree
    n = int(sys.argv[1])
    tree = random_tree(40, seed=1)
    aln = simulate_alignment(tree, "HKY{3}+F{0.2,0.3,0.3,0.2}+I{0.1}+G4{0.5}", 3000, seed=4)
    problem = Problem(aln, tree, "HKY+I+G4", threads=n, block_size=256)
    assert problem.likelihood.n_blocks > 1
    sampler = Sampler(problem)
    res = sampler.run(sampler.initial_state(), beta=1.0, n_samples=40, thin=problem.dim,
                      burnin=5, rng=np.random.default_rng(5), store_z=True)
    print(hashlib.sha256(res.z.tobytes() + res.loglik.tobytes()).hexdigest())
""")


def test_chain_identical_across_threads(tmp_path):
    """Pattern-blocked likelihood with free model parameters: 1 and 2 threads give the
    same chain bit for bit (in subprocesses, as tests/test_threads.py)."""
    script = tmp_path / "chain.py"
    script.write_text(THREAD_SCRIPT)
    out = []
    for n in (1, 2):
        proc = subprocess.run([sys.executable, str(script), str(n)], capture_output=True,
                              text=True, cwd=ROOT, timeout=600,
                              env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                   "NUMBA_NUM_THREADS": "2"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        out.append(proc.stdout.strip())
    assert out[0] == out[1]


HISTORY_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from phylo._kernels import models as km
    junk = []
    if sys.argv[1] == "busy":           # a different heap history before the same work
        rng = np.random.default_rng(0)
        junk = [np.empty(int(n)) for n in rng.integers(1, 999, 300)]
        km.discrete_gamma_rates(0.3, 7)
    rng = np.random.default_rng(7)
    h = hashlib.sha256()
    for _ in range(200):
        exch = np.exp(rng.normal(0, 2, 6)); exch = exch / exch[5]
        pi = rng.dirichlet(np.ones(4))
        q = np.empty((4, 4)); km.rate_matrix_into(exch, pi, q)
        lam, v, vinv = np.empty(4), np.empty((4, 4)), np.empty((4, 4))
        km.reversible_eigen_into(q, pi, lam, v, vinv)
        h.update(lam.tobytes() + v.tobytes() + vinv.tobytes())
    print(h.hexdigest())
""")


def test_eigensystem_bits_do_not_depend_on_process_history(tmp_path):
    """The same eigensystem bits whatever ran before in the process (LAPACK's syevd
    through a SIMD BLAS depends on memory alignment: an optimiser's path then differed
    between processes that had allocated differently)."""
    script = tmp_path / "history.py"
    script.write_text(HISTORY_SCRIPT)
    out = []
    for mode in ("quiet", "busy"):
        proc = subprocess.run([sys.executable, str(script), mode], capture_output=True,
                              text=True, cwd=ROOT, timeout=600,
                              env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        out.append(proc.stdout.strip())
    assert out[0] == out[1]
