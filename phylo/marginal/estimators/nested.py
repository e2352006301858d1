"""Nested sampling (Skilling 2006) with constrained MCMC moves in z = (log t, u).

``n_live`` live points start as exact prior draws. Each iteration removes the live
point of lowest likelihood L*, credits it the prior-volume shell
X_{i−1} − X_i with log X_i = −i/N (the expected shrinkage), and replaces it by a
copy of another live point moved by ``mcmc_length`` generations of the prior
random-walk sampler restricted to log L > log L* (:mod:`phylo._kernels.mcmc`). The
move widths are tuned between iterations towards acceptance 0.3. The run stops
when the live points can add at most a fraction ``tolerance`` to Z; they are then
added with the remaining volume. Error: √(H/N), H the information (Skilling 2006).

Fourment et al. (2020) use N = 50 and a walk length of 1000; with a ``budget`` the
walk length is set from an estimate of the number of iterations N·(dim·2) instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...errors import EstimatorError
from ..base import Estimate, MarginalLikelihoodEstimator, check_device_setting, check_positive
from ..mcmc import INITIAL_SCALE, ChainState, Sampler


@dataclass
class NestedSampling(MarginalLikelihoodEstimator):
    """Skilling's (2006) nested sampling; see module docstring."""

    name: ClassVar[str] = "nested-sampling"
    warmup_settings: ClassVar[dict[str, Any]] = {"n_live": 4, "mcmc_length": 2,
                                                 "max_iterations": 8}
    n_live: int = 50
    mcmc_length: int = 1000
    tolerance: float = 1e-3
    max_iterations: int = 100_000
    device: str = "cpu"

    def validate(self, problem) -> None:
        check_positive(self.name, n_live=self.n_live, mcmc_length=self.mcmc_length,
                       tolerance=self.tolerance, max_iterations=self.max_iterations)
        check_device_setting(self.name, self.device)
        if self.n_live < 2:
            raise EstimatorError(f"{self.name}: n_live must be at least 2")

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        n = self.n_live
        length = self.mcmc_length
        if budget is not None:
            length = int(np.clip(budget // max(1, n * 2 * problem.dim), 20, 10 * self.mcmc_length))
        live = problem.sample_prior(n, rng=rng)
        live_ll = problem.log_likelihood_batch(live, device=self.device)
        live_lp = problem.log_prior_batch(live)
        sampler = Sampler(problem)
        scales = np.full(problem.dim + 1, INITIAL_SCALE)
        log_z = -math.inf
        h = 0.0
        log_x_prev = 0.0
        dead_ll: list[float] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(desc="nested sampling", unit="it", leave=False)
        it = 0
        try:
            for it in range(1, self.max_iterations + 1):
                worst = int(np.argmin(live_ll))
                l_star = float(live_ll[worst])
                log_x = -it / n
                log_w = l_star + log_x_prev + math.log1p(-math.exp(log_x - log_x_prev))
                new_log_z = np.logaddexp(log_z, log_w)
                h = (math.exp(log_w - new_log_z) * l_star
                     + (math.exp(log_z - new_log_z) * (h + log_z) if np.isfinite(log_z) else 0.0)
                     - new_log_z)
                log_z = float(new_log_z)
                dead_ll.append(l_star)
                log_x_prev = log_x
                # replace the worst point: walk from a copy of another live point
                j = int(rng.integers(n - 1))
                j = j + 1 if j >= worst else j
                state = ChainState(live[j].copy(), float(live_ll[j]), float(live_lp[j]), scales)
                res = sampler.run(state, beta=0.0, n_samples=1, thin=length, rng=rng,
                                  ll_min=l_star, adapt=False)
                acc = float(np.mean(res.acceptance[:problem.dim]))
                scales *= math.exp(np.clip(acc - 0.3, -0.5, 0.5))
                np.clip(scales, 1e-5, 20.0, out=scales)
                live[worst], live_ll[worst], live_lp[worst] = state.z, state.loglik, state.logprior
                if bar is not None:
                    bar.update(1)
                if float(np.max(live_ll)) + log_x < log_z + math.log(self.tolerance):
                    break
        finally:
            if bar is not None:
                bar.close()
        # the remaining live points share the final volume equally
        m = float(np.max(live_ll))
        log_live = m + math.log(np.mean(np.exp(live_ll - m))) + log_x_prev
        final = float(np.logaddexp(log_z, log_live))
        h_final = h  # information of the dead points; the live remainder adds little
        se = math.sqrt(max(h_final, 0.0) / n)
        return Estimate(final, se, {"iterations": it, "information": h_final, "walk_length": length,
                                    "loglik_trace": dead_ll[-2000:],
                                    "live_fraction": math.exp(log_live - final)})
