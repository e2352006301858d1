"""Stepping stone: phylo vs MrBayes 3.2.7a in the same run (same ladder, same generations).

Settings are MrBayes' (../shared/reference/primates/mrbayes_ss/*.nex): JC69, Exp(10)
branch lengths, fixed topology, 50 steps at Beta(0.4, 1) quantiles, samplefreq 100,
25 % burn-in per step, ``nruns=2 nchains=1``. MrBayes runs from a temporary folder
with a reduced ``ngen`` (default 510 000, i.e. 10⁴ generations per step; ``--full``:
5.1 × 10⁶ as the reference; ``--quick``: 102 000). phylo runs the same generations
per step (thinning 100, 75 % kept), one run per MrBayes run. The ratio compares wall
time per likelihood evaluation (MrBayes: one per generation and run; ours: counted).
Both update incrementally: a single-branch move recomputes only the partials on the
path from that branch to the root (phylo: ``phylo._kernels.mcmc.run_chain_tree``).
Also times Gamma Laplus on a DS1 topology (compile excluded).

Writes benchmarks/results/stepping_stone.json and .md (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))

from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402
from phylo.marginal import Problem, get_estimator  # noqa: E402
from phylo.marginal.mcmc import Sampler  # noqa: E402

N_STEPS = 50
ALPHA = 0.4
SAMPLEFREQ = 100


def run_mrbayes(nex: Path, ngen: int, seed: int, workdir: Path) -> dict:
    text = nex.read_text()
    text = re.sub(r"ngen=\d+", f"ngen={ngen}", text)
    text = re.sub(r"printfreq=\d+", f"printfreq={max(ngen // 20, 100)}", text)
    text = re.sub(r"seed=\d+ swapseed=\d+", f"seed={seed} swapseed={seed}", text)
    text = re.sub(r"filename=\w+", "filename=bench", text)
    path = workdir / "bench.nex"
    path.write_text(text)
    start = time.perf_counter()
    proc = subprocess.run(["mb", path.name], cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - start
    m = re.search(r"Mean:\s+(-?\d+\.\d+)", proc.stdout)
    runs = [float(x) for x in re.findall(r"^\s+[12]\s+(-\d+\.\d+)\s*$", proc.stdout, re.M)]
    return {"seed": seed, "ngen": ngen, "log_marginal_likelihood": float(m.group(1)) if m else None,
            "per_run": runs, "seconds": wall, "likelihood_evaluations": 2 * ngen,
            "returncode": proc.returncode}


def run_phylo(problem: Problem, ngen: int, seed: int) -> dict:
    per_step = ngen // (N_STEPS + 1)
    kept = int(0.75 * per_step / SAMPLEFREQ)
    burn = per_step // SAMPLEFREQ - kept
    est = get_estimator("stepping-stone", n_steps=N_STEPS, alpha=ALPHA, samples_per_step=kept,
                        burnin=burn, thin=SAMPLEFREQ)
    res = [est.run(problem, seed=seed * 10 + r) for r in range(2)]   # two runs, as nruns=2
    logz = [r.log_marginal_likelihood for r in res]
    m = max(logz)
    mean = m + np.log(np.mean(np.exp(np.array(logz) - m)))  # MrBayes' "Mean"
    return {"seed": seed, "log_marginal_likelihood": float(mean), "per_run": logz,
            "std_error": [r.std_error for r in res],
            "seconds": sum(r.seconds for r in res),
            "likelihood_evaluations": sum(r.likelihood_evaluations for r in res)}


def gamma_laplus_ds1() -> dict:
    d = SHARED / "data/DS1"
    aln = read_alignment(d / "DS1.fasta")
    first = (d / "JC_no_gamma_credible_set_ds1").read_text().splitlines()[0].split("\t")[1]
    problem = Problem(aln, parse_newick(first), "JC")
    est = get_estimator("gamma-laplus")
    t0 = time.perf_counter()
    est.run(problem, seed=1)
    first_call = time.perf_counter() - t0
    times, res = [], None
    for _ in range(3):
        res = est.run(problem, seed=1)
        times.append(res.seconds)
    return {"log_marginal_likelihood": res.log_marginal_likelihood, "seconds_median": float(np.median(times)),
            "seconds_first_call_incl_compile": first_call,
            "likelihood_evaluations": res.likelihood_evaluations, "n_branches": problem.n_branches}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="102 000 generations (2 000 per step)")
    g.add_argument("--full", action="store_true", help="MrBayes' reference 5.1e6 generations")
    ap.add_argument("--ngen", type=int, default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--no-mrbayes", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args(argv)
    ngen = args.ngen or (102_000 if args.quick else 5_100_000 if args.full else 510_000)
    d = SHARED / "reference/primates"
    aln = read_alignment(d / "primates.nex")
    problem = Problem(aln, parse_newick((d / "mrbayes_ss/fixed_tree_jc_ml.nwk").read_text()), "JC")
    t0 = time.perf_counter()
    s = Sampler(problem)
    s.run(s.initial_state(), beta=1.0, n_samples=2, thin=2, rng=np.random.default_rng(0))
    compile_s = time.perf_counter() - t0
    out = {"benchmark": "stepping_stone", "dataset": "primates (12 taxa, 898 sites, 413 patterns)",
           "settings": {"n_steps": N_STEPS, "alpha": ALPHA, "samplefreq": SAMPLEFREQ, "ngen_per_run": ngen,
                        "nruns": 2, "burnin_fraction": 0.25},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
           "phylo_compile_seconds": compile_s, "runs": []}
    mb = shutil.which("mb")
    for seed in args.seeds:
        row = {"phylo": run_phylo(problem, ngen, seed)}
        if mb and not args.no_mrbayes:
            with tempfile.TemporaryDirectory() as tmp:
                row["mrbayes"] = run_mrbayes(d / "mrbayes_ss/ss_seed1.nex", ngen, seed, Path(tmp))
            p, m = row["phylo"], row["mrbayes"]
            row["per_evaluation_ratio_mrbayes_over_phylo"] = (
                (m["seconds"] / m["likelihood_evaluations"]) / (p["seconds"] / p["likelihood_evaluations"]))
        out["runs"].append(row)
        print(json.dumps(row, default=float), flush=True)
    out["reference_mrbayes_full"] = "−6468.88, −6468.90, −6468.94 (5.1e6 generations, seeds 1–3)"
    try:
        out["gamma_laplus_ds1"] = gamma_laplus_ds1()
    except FileNotFoundError as exc:
        out["gamma_laplus_ds1"] = f"skipped: {exc}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stepping_stone.json").write_text(json.dumps(out, indent=1, default=float))
    lines = ["# Stepping stone: phylo vs MrBayes 3.2.7a (primates, JC69, Exp(10), fixed topology)", "",
             f"{N_STEPS} steps, Beta({ALPHA}, 1) ladder, {ngen} generations per run, 2 runs each; "
             f"phylo compile {compile_s:.1f} s (excluded).", "",
             "| seed | phylo log Z | MrBayes log Z | phylo s | MrBayes s | phylo evals | MrBayes evals | MrBayes/phylo time per eval |",
             "|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        p, m = r["phylo"], r.get("mrbayes", {})
        lines.append(f"| {p['seed']} | {p['log_marginal_likelihood']:.2f} | {m.get('log_marginal_likelihood')} | "
                     f"{p['seconds']:.1f} | {m.get('seconds', float('nan')):.1f} | {p['likelihood_evaluations']} | "
                     f"{m.get('likelihood_evaluations')} | {r.get('per_evaluation_ratio_mrbayes_over_phylo', float('nan')):.2f} |")
    gl = out["gamma_laplus_ds1"]
    if isinstance(gl, dict):
        lines += ["", f"Gamma Laplus on DS1 (first credible-set topology, {gl['n_branches']} branches): "
                      f"log Z {gl['log_marginal_likelihood']:.2f}, {gl['seconds_median']:.3f} s (median of 3, "
                      f"warm), {gl['likelihood_evaluations']} evaluations."]
    (args.out / "stepping_stone.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
