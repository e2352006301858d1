"""The comparison of Fourment et al. (2020, Syst Biol 69:209) on DS1 (and more data sets).

For the topologies of ../shared/data/DSk/JC_no_gamma_credible_set_dsk (DS1: 42 with
golden-run posterior probabilities): a long stepping stone per topology (the
reference), then every registered estimator with repeats. Marginal likelihoods are
normalised over the set (uniform topology prior) and scored as in the paper:
KL(golden ‖ estimate) over the topologies and the RMSD of the implied split
probabilities; bias and standard deviation are against the long stepping stone.

Default budget (under an hour on 2 cores): the 8 most probable topologies, 3 repeats,
2·10⁵ likelihood evaluations per estimator run and 3·10⁶ for the reference (the
results in benchmarks/results/ were made with --budget 300000 --reference-budget
4000000, 61 minutes with other jobs on the machine) — stated
in the output. ``--quick``: 3 topologies, 2·10⁴ / 10⁵. ``--full``: the paper's budget
(all topologies, 10 repeats, 50 × 10⁶ generations for power posteriors).

Writes JSON, Markdown and a PNG plot (matplotlib, Agg) to benchmarks/results/ (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))

from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402
from phylo.marginal import Problem, available_estimators, compare, get_estimator  # noqa: E402


def read_credible_set(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            p, nwk = line.split("\t", 1)
            out.append((float(p), nwk.strip()))
    return out


def splits_of(tree) -> set[frozenset]:
    """Non-trivial splits, each as the side without leaf 0."""
    s = tree.n_leaves
    below: list[set[int]] = [set() for _ in range(tree.n_nodes)]
    for v in range(s):
        below[v] = {v}
    for v in range(s, tree.n_nodes):
        for c in tree.children[v, :tree.n_children[v]]:
            below[v] |= below[c]
    out = set()
    for v in range(s, tree.root):
        side = below[v] if 0 not in below[v] else set(range(s)) - below[v]
        if 1 < len(side) < s - 1:
            out.add(frozenset(side))
    return out


def normalise(logz: np.ndarray) -> np.ndarray:
    w = np.exp(logz - logz.max())
    return w / w.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    eps = np.finfo(float).eps
    return float(np.sum(p * (np.log(p + eps) - np.log(np.maximum(q, eps)))))


def split_rmsd(p: np.ndarray, q: np.ndarray, splits: list[set]) -> float:
    allsplits = sorted(set().union(*splits), key=lambda x: sorted(x))
    sp = np.array([[s in t for s in allsplits] for t in splits], dtype=float)
    return float(np.sqrt(np.mean((p @ sp - q @ sp) ** 2)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["DS1"])
    ap.add_argument("--topologies", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=200_000, help="likelihood evaluations per run")
    ap.add_argument("--reference-budget", type=int, default=3_000_000)
    ap.add_argument("--estimators", nargs="+", default=available_estimators())
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--full", action="store_true", help="the paper's budget (days on 2 cores)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args(argv)
    if args.quick:
        args.topologies, args.budget, args.reference_budget = 3, 20_000, 100_000
    if args.full:
        args.topologies, args.repeats, args.budget, args.reference_budget = 10**6, 10, None, 50_000_000
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "marginal_ds", "paper": "Fourment et al. 2020, Syst Biol 69:209",
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "datasets": {}}
    md = ["# 19 dubious ways: estimator comparison", ""]
    for ds in args.datasets:
        d = SHARED / "data" / ds
        aln = read_alignment(d / f"{ds}.fasta")
        cs = read_credible_set(d / f"JC_no_gamma_credible_set_{ds.lower()}")[: args.topologies]
        golden = np.array([p for p, _ in cs])
        golden = golden / golden.sum()
        trees = [parse_newick(nwk, taxa=aln.taxa) for _, nwk in cs]
        splits = [splits_of(t) for t in trees]
        problems = {f"{ds}-T{i + 1}": Problem(aln, t, "JC", name=f"{ds}-T{i + 1}") for i, t in enumerate(trees)}
        # reference: a long stepping stone per topology
        t0 = time.perf_counter()
        ref_est = get_estimator("stepping-stone")
        ref = compare(problems, [ref_est], repeats=1, seed=args.seed + 1000, budget=args.reference_budget)
        ref_logz = np.array([r["log_marginal_likelihood"] for r in ref])
        ref_seconds = time.perf_counter() - t0
        print(f"{ds}: reference SS done in {ref_seconds:.0f} s", flush=True)
        table = compare(problems, args.estimators, repeats=args.repeats, seed=args.seed,
                        budget=args.budget, progress=False)
        names = list(problems)
        rows = []
        for est in args.estimators:
            cells = [r for r in table if r["estimator"] == est]
            kls, rmsds, biases, sds, secs = [], [], [], [], []
            for rep in range(args.repeats):
                lz = np.array([next(r["log_marginal_likelihood"] for r in cells
                                    if r["problem"] == n and r["repeat"] == rep) for n in names])
                q = normalise(lz)
                kls.append(kl(golden, q))
                rmsds.append(split_rmsd(golden, q, splits))
                biases.append(np.mean(lz - ref_logz))
            per_topo = np.array([[r["log_marginal_likelihood"] for r in cells if r["problem"] == n] for n in names])
            sds = per_topo.std(axis=1, ddof=1).mean() if args.repeats > 1 else float("nan")
            secs = np.mean([r["seconds"] for r in cells])
            rows.append({"estimator": est, "kl": float(np.mean(kls)), "split_rmsd": float(np.mean(rmsds)),
                         "bias_vs_ss": float(np.mean(biases)), "sd": float(sds), "seconds": float(secs),
                         "evaluations": float(np.mean([r["likelihood_evaluations"] for r in cells]))})
            print(rows[-1], flush=True)
        ref_q = normalise(ref_logz)
        report["datasets"][ds] = {
            "topologies": len(names), "golden_mass_covered": float(sum(p for p, _ in cs)),
            "reference": {"log_z": ref_logz.tolist(), "kl": kl(golden, ref_q),
                          "split_rmsd": split_rmsd(golden, ref_q, splits), "seconds": ref_seconds},
            "estimators": sorted(rows, key=lambda r: r["kl"]),
            "rows": list(table)}
        md += [f"## {ds}: {len(names)} topologies, {args.repeats} repeat(s), budget {args.budget} "
               f"evaluations per run; reference SS {args.reference_budget} evaluations "
               f"(KL of the reference itself {kl(golden, ref_q):.4f})", "",
               "| estimator | KL | split RMSD | bias vs long SS | SD | seconds |", "|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: r["kl"]):
            md.append(f"| {r['estimator']} | {r['kl']:.4g} | {r['split_rmsd']:.4g} | {r['bias_vs_ss']:+.3f} | "
                      f"{r['sd']:.3f} | {r['seconds']:.2f} |")
        md.append("")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 5))
        for r in rows:
            ax.scatter(max(r["seconds"], 1e-3), max(r["kl"], 1e-6))
            ax.annotate(r["estimator"], (max(r["seconds"], 1e-3), max(r["kl"], 1e-6)), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("seconds per run")
        ax.set_ylabel("KL(golden || estimate)")
        ax.set_title(f"{ds}: {len(names)} topologies")
        fig.tight_layout()
        fig.savefig(args.out / f"marginal_{ds}.png", dpi=120)
        plt.close(fig)
    (args.out / "marginal_ds.json").write_text(json.dumps(report, indent=1, default=float))
    (args.out / "marginal_ds.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
