"""Scale: `phylo.noise.solve` on 10^4 cells × 200 mutations on one core.

Issue 14's target: a random recursive mutation tree (the benchmark generator
of the PhISCS-BnB comparisons) with 10,000 cells and 200 mutations, β = 0.2,
α = 0.001, 10% missing entries, solved with the default effort in ≤ 60 s on
one core with a log-likelihood at least the true matrix's. Reports the time
(CPU seconds of the solve: on a shared machine the comparable number; wall
seconds too), both log-likelihoods, the entries changed relative to the noisy
input (flips), the entries that differ from the true matrix, and the peak
resident memory of the process (``ru_maxrss``, including Python and the
simulation).

``--baseline DIR`` also runs the same problem, in a subprocess, with the
``phylo`` package found in DIR (e.g. an export of an older commit: ``git
archive <commit> phylo | tar -x -C DIR``) and reports the CPU-time ratio
measured in the same run.

    NUMBA_NUM_THREADS=1 python3 benchmarks/noise_scale.py [--cells 10000] [--mutations 200]
        [--baseline DIR] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the phylo package under test: this checkout, or --baseline's DIR in the worker
CODE = Path(os.environ.get("PHYLO_NOISE_SCALE_CODE", REPO))
sys.path.insert(0, str(CODE))

from phylo.noise import MISSING, log_likelihood, simulate, solve  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "noise_scale"


def measure(cells: int, mutations: int, seed: int) -> dict:
    alpha, beta, missing = 0.001, 0.2, 0.1
    sim = simulate(cells, mutations, alpha=alpha, beta=beta, missing=missing,
                   lineage="random-tree", seed=seed)
    solve(sim.observed[:50, :10], alpha=alpha, beta=beta, seed=1)  # compile outside the clock
    t = time.perf_counter()
    c = time.process_time()
    sol = solve(sim.observed, alpha=alpha, beta=beta, seed=seed)
    seconds = time.perf_counter() - t
    cpu_seconds = time.process_time() - c
    true_ll = log_likelihood(sim.observed, sim.true, alpha, beta)
    obs = sim.observed != MISSING
    return {
        "cells": cells, "mutations": mutations, "alpha": alpha, "beta": beta,
        "missing": missing, "seed": seed, "seconds": round(seconds, 2),
        # on a shared, loaded machine the CPU time is the comparable number
        "cpu_seconds": round(cpu_seconds, 2), "load_average_1min": os.getloadavg()[0],
        "log_likelihood": sol.log_likelihood, "true_log_likelihood": true_ll,
        "at_least_true": bool(sol.log_likelihood >= true_ll - 1e-6),
        "restarts": sol.restarts, "hits": sol.hits,
        "flips_vs_noisy_input": sol.flips,
        "noisy_entries_in_input": int((obs & (sim.observed != sim.true)).sum()),
        "wrong_vs_true_matrix": int((sol.matrix != sim.true).sum()),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--mutations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="also time the phylo package found in DIR, same problem")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1000 cells x 50 mutations (results not written)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.cells, args.mutations = 1000, 50
    rec = measure(args.cells, args.mutations, args.seed)
    if args.worker:
        print(json.dumps(rec))
        return 0
    if args.baseline:
        env = {**os.environ, "PHYLO_NOISE_SCALE_CODE": str(Path(args.baseline).resolve()),
               "NUMBA_NUM_THREADS": "1"}
        run = subprocess.run([sys.executable, __file__, "--worker", "--cells", str(args.cells),
                              "--mutations", str(args.mutations), "--seed", str(args.seed)],
                             capture_output=True, text=True, env=env, check=True)
        base = json.loads(run.stdout.strip().splitlines()[-1])
        rec["baseline"] = {"code": str(args.baseline), **base}
        rec["cpu_speedup_vs_baseline"] = round(base["cpu_seconds"] / rec["cpu_seconds"], 2)
    print(rec)
    if args.quick:
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(rec, indent=1) + "\n")
    lines = [f"# noise solve at scale (one core; load average {rec['load_average_1min']:.1f})",
             "", "| code | CPU s | wall s | log-likelihood | true matrix's | restarts (hits) "
             "| flips vs input | wrong vs truth | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, r in (("this checkout", rec), ("baseline", rec.get("baseline"))):
        if r is not None:
            lines.append(f"| {name} | {r['cpu_seconds']} | {r['seconds']} | "
                         f"{r['log_likelihood']:.2f} | {r['true_log_likelihood']:.2f} | "
                         f"{r['restarts']} ({r['hits']}) | {r['flips_vs_noisy_input']} | "
                         f"{r['wrong_vs_true_matrix']} | {r['peak_rss_mib']} |")
    lines += ["", f"{rec['cells']} cells × {rec['mutations']} mutations, α = {rec['alpha']}, "
              f"β = {rec['beta']}, {rec['missing']:.0%} missing, random recursive tree, "
              f"seed {rec['seed']}; the noisy input has {rec['noisy_entries_in_input']} "
              "wrong observed entries. Target (issue 14): ≤ 60 s, log-likelihood ≥ the true "
              "matrix's."]
    if "cpu_speedup_vs_baseline" in rec:
        lines.append(f"CPU-time ratio baseline / this checkout, same run: "
                     f"{rec['cpu_speedup_vs_baseline']}×.")
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
