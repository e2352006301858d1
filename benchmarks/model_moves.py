"""Free model parameters over tree space: this tree vs a reference checkout (main).

Free substitution-model parameters (HKY+G4: κ, π, α; GTR+G4: also the
exchangeabilities) used to cost one Python ``Model`` and one ``TreeLikelihood`` per
likelihood evaluation at a new parameter vector, SciPy's L-BFGS-B woke OpenBLAS's thread
pool at every iteration, and MCMC model moves left the compiled loop. This times, in
one run and on this machine:

1. Gamma-Laplus IS (the tree-space inner estimator by default) on the ``--topologies``
   most probable DS1 topologies of ../shared/data/DS1/short_run/rep_1, for HKY+G4 and
   GTR+G4: CPU seconds per topology and log Z ± SE, this tree against ``--reference``
   (a checkout of main, run in a subprocess with PYTHONPATH set to it); the two log Z
   must agree within their standard errors.
2. A power-posterior MCMC segment (β = 1) on the top topology, HKY+G4: CPU µs per
   generation, this tree (model moves compiled) vs the reference (model moves in Python).
3. ``tree_space_marginal`` of HKY+G4 on that run end to end (S = the ``--tree-space``
   most probable topologies), this tree only (and the reference with ``--tree-space-ref``).

CPU seconds (``time.process_time``, all threads) are reported, not wall time: the machine
is shared. Compilation is excluded (one warm-up run of every path first).
Writes benchmarks/results/model_moves.json and .md.

    python3 benchmarks/model_moves.py --reference /path/to/main/checkout
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))
RUN = SHARED / "data" / "DS1" / "short_run" / "rep_1" / "DS1.trprobs.gz"
FASTA = SHARED / "data" / "DS1" / "DS1.fasta"
MODELS = ("HKY+G4", "GTR+G4")


def measure(n_topologies: int, mcmc_samples: int, tree_space: int) -> dict:
    """The measurements with whatever ``phylo`` is importable (this tree or the reference)."""
    import numpy as np
    import phylo
    from phylo.io.alignment import read_alignment
    from phylo.io.trees import read_trees
    from phylo.marginal import Problem
    from phylo.marginal.mcmc import Sampler
    from phylo.marginal.registry import get_estimator
    aln = read_alignment(FASTA)
    trees = list(read_trees(RUN, taxa=aln.taxa))[:n_topologies]
    out: dict = {"phylo": str(Path(phylo.__file__).resolve().parent), "glis": {}, "mcmc": {}}
    for model in MODELS:
        get_estimator("gamma-laplus-is", n_samples=4).run(Problem(aln, trees[0], model), seed=1)
        rows = []
        for i, tree in enumerate(trees):
            problem = Problem(aln, tree, model)
            c0 = time.process_time()
            res = get_estimator("gamma-laplus-is").run(problem, seed=1 + i)
            rows.append({"topology": i + 1, "cpu_seconds": time.process_time() - c0,
                         "log_z": res.log_marginal_likelihood, "se": res.std_error,
                         "evaluations": res.likelihood_evaluations,
                         "optimizer_iterations": res.diagnostics.get("optimizer_iterations")})
            print(f"  {model} topology {i + 1}: {rows[-1]['cpu_seconds']:.2f} s CPU, "
                  f"log Z {res.log_marginal_likelihood:.3f} ± {res.std_error:.3f}", flush=True)
        out["glis"][model] = rows
    if mcmc_samples:
        problem = Problem(aln, trees[0], "HKY+G4")
        sampler = Sampler(problem)
        sampler.run(sampler.initial_state(), beta=1.0, n_samples=2, thin=problem.dim, burnin=1,
                    rng=np.random.default_rng(0))
        state = sampler.initial_state()
        c0 = time.process_time()
        res = sampler.run(state, beta=1.0, n_samples=mcmc_samples, thin=problem.dim, burnin=0,
                          rng=np.random.default_rng(1))
        cpu = time.process_time() - c0
        out["mcmc"] = {"model": "HKY+G4", "generations": int(res.evaluations), "cpu_seconds": cpu,
                       "us_per_generation": 1e6 * cpu / res.evaluations,
                       "model_move_fraction": problem.n_model / (problem.dim + 1),
                       "mean_loglik": float(res.loglik.mean())}
        print(f"  MCMC HKY+G4: {out['mcmc']['us_per_generation']:.0f} us/generation CPU", flush=True)
    if tree_space:
        from phylo.marginal.tree_space import tree_space_marginal
        kw = dict(max_topologies=tree_space, target_mass=1.0, seed=1)
        c0 = time.process_time()
        res = tree_space_marginal(aln, RUN, "HKY+G4", **kw)
        cpu = time.process_time() - c0
        d = res.diagnostics
        out["tree_space"] = {"model": "HKY+G4", "cpu_seconds": cpu, "seconds": res.seconds,
                             "log_z": res.log_marginal_likelihood, "se": res.std_error,
                             "n_topologies": d.get("n_topologies"),
                             "posterior_mass": d.get("posterior_mass"),
                             "implied_spread": d.get("implied_spread")}
        print(f"  tree space HKY+G4 (S = {d.get('n_topologies')}): {cpu:.1f} s CPU, "
              f"log Z {res.log_marginal_likelihood:.3f} ± {res.std_error:.3f}", flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="checkout of the reference (main) to compare with")
    parser.add_argument("--topologies", type=int, default=3)
    parser.add_argument("--mcmc-samples", type=int, default=20)
    parser.add_argument("--tree-space", type=int, default=10,
                        help="topologies in S for the end-to-end tree-space run (0: skip)")
    parser.add_argument("--tree-space-ref", action="store_true",
                        help="also run the tree-space timing with the reference")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if args.worker:                     # the reference's measurements, as JSON on stdout
        res = measure(args.topologies, args.mcmc_samples, args.tree_space)
        print("JSON" + json.dumps(res))
        return 0
    if not FASTA.exists():
        print(f"needs {FASTA} (set PHYLO_SHARED)", file=sys.stderr)
        return 2
    print("this tree:", flush=True)
    ours = measure(args.topologies, args.mcmc_samples, args.tree_space)
    ref = None
    if args.reference:
        print(f"reference {args.reference}:", flush=True)
        env = {**os.environ, "PYTHONPATH": str(Path(args.reference).resolve())}
        proc = subprocess.run([sys.executable, __file__, "--worker", "--topologies",
                               str(args.topologies), "--mcmc-samples", str(args.mcmc_samples),
                               "--tree-space", str(args.tree_space if args.tree_space_ref else 0)],
                              env=env, capture_output=True, text=True, cwd=args.reference)
        sys.stdout.write("".join(line + "\n" for line in proc.stdout.splitlines()
                                 if not line.startswith("JSON")))
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        ref = json.loads(next(line for line in proc.stdout.splitlines()
                              if line.startswith("JSON"))[4:])
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=REPO).stdout.strip()
    ref_git = (subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=args.reference).stdout.strip()
               if args.reference else None)
    rows = []
    for model in MODELS:
        for i, a in enumerate(ours["glis"][model]):
            row = {"model": model, "topology": a["topology"], "cpu_seconds": a["cpu_seconds"],
                   "log_z": a["log_z"], "se": a["se"], "evaluations": a["evaluations"]}
            if ref is not None:
                b = ref["glis"][model][i]
                diff = a["log_z"] - b["log_z"]
                comb = (a["se"] ** 2 + b["se"] ** 2) ** 0.5
                row.update({"ref_cpu_seconds": b["cpu_seconds"], "ref_log_z": b["log_z"],
                            "ref_se": b["se"], "speedup": b["cpu_seconds"] / a["cpu_seconds"],
                            "log_z_difference": diff, "combined_se": comb,
                            "agree_within_2se": abs(diff) <= 2 * comb})
            rows.append(row)
    meta = {"platform": platform.platform(), "python": sys.version.split()[0],
            "load_average_at_end": os.getloadavg(), "this_tree": git, "reference": ref_git,
            "data": "DS1 (27 taxa), topologies of short_run/rep_1 DS1.trprobs.gz, most "
                    "probable first", "estimator": "gamma-laplus-is (10^4 draws), seed 1 + i",
            "cpu": "time.process_time: CPU seconds of all threads of the process"}
    result = {"meta": meta, "glis": rows, "mcmc": {"this": ours.get("mcmc"),
                                                   "reference": ref and ref.get("mcmc")},
              "tree_space": {"this": ours.get("tree_space"),
                             "reference": ref and ref.get("tree_space")}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_moves.json").write_text(json.dumps(result, indent=1) + "\n")
    md = ["# Free model parameters: compiled model numerics vs the reference", "",
          f"This tree {git} vs reference {ref_git}; {meta['data']}; {meta['estimator']}. "
          f"CPU seconds (all threads), compilation excluded; load average at the end "
          f"{', '.join(f'{x:.1f}' for x in meta['load_average_at_end'])} (2 cores, shared).", "",
          "## Gamma-Laplus IS per topology", "",
          "| model | topology | CPU s (this) | CPU s (ref) | speed-up | log Z (this) | log Z (ref) | diff / combined SE |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if ref is not None:
            md.append(f"| {r['model']} | {r['topology']} | {r['cpu_seconds']:.2f} | "
                      f"{r['ref_cpu_seconds']:.2f} | {r['speedup']:.1f}× | "
                      f"{r['log_z']:.3f} ± {r['se']:.3f} | {r['ref_log_z']:.3f} ± {r['ref_se']:.3f} | "
                      f"{r['log_z_difference'] / r['combined_se']:+.2f} |")
        else:
            md.append(f"| {r['model']} | {r['topology']} | {r['cpu_seconds']:.2f} | | | "
                      f"{r['log_z']:.3f} ± {r['se']:.3f} | | |")
    m, mr = ours.get("mcmc"), ref and ref.get("mcmc")
    if m:
        md += ["", "## MCMC (β = 1) on the top topology, HKY+G4", "",
               f"This tree: {m['us_per_generation']:.0f} µs CPU per generation over "
               f"{m['generations']} generations (model moves are {m['model_move_fraction']:.1%} "
               "of the proposals)."
               + (f" Reference: {mr['us_per_generation']:.0f} µs "
                  f"({mr['us_per_generation'] / m['us_per_generation']:.1f}×)." if mr else "")]
    ts, tsr = ours.get("tree_space"), ref and ref.get("tree_space")
    if ts:
        md += ["", "## Tree space end to end, HKY+G4", "",
               f"`tree_space_marginal` on rep_1 with S = {ts['n_topologies']} topologies "
               f"(posterior mass {ts['posterior_mass']:.3f}): {ts['cpu_seconds']:.1f} s CPU, "
               f"log Z {ts['log_z']:.3f} ± {ts['se']:.3f}."
               + (f" Reference: {tsr['cpu_seconds']:.1f} s CPU, log Z {tsr['log_z']:.3f} ± "
                  f"{tsr['se']:.3f}." if tsr else "")]
    (out / "model_moves.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
