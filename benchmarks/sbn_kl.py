"""SBN paper Table 1 (real data): KL(golden ‖ estimate) for SRF, CCD, SBN-SA, SBN-EM,
SBN-EM-α on DS1–DS4, against the published means (Zhang & Matsen 2018).

Protocol (as the reference notebook zcrabbit/sbn experiments/real-data.ipynb):
* golden: the 10 golden-run replicates pooled, counts = w × 750001 per replicate
  (rounded to integers, which recovers the sample counts from the 6-decimal weights);
* training: each short-run replicate's ``.trprobs`` weights (normalised);
* KL over the golden topologies with q clamped at float64 machine epsilon;
* SBN-EM and SBN-EM-α as the issue states them: EM until the objective changes by
  less than 1e-5 (no minimum number of iterations), EM-α with α = 1e-4 and the
  reference code's pseudo-counts (the SA mass of each parent subsplit spread evenly
  over its observed child subsplits, ``alpha_prior="uniform"``);
* two extra columns show how the results depend on the number of EM iterations:
  "EM, ref. rule" with the reference code's rule (zcrabbit/sbn ``models.py``
  ``bn_em_prob``: at least 51 iterations, then |Δ| < 1e-4, at most 100), compared
  with the published SBN-EM; "EM (long)", 1000 iterations, compared with the
  published SBN-EM-α (see the notes).

Usage: python benchmarks/sbn_kl.py [--datasets DS1 DS2 DS3 DS4] [--reps 10] [--out DIR]
Writes sbn_kl.json and sbn_kl.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from phylo.io.trees import read_topologies  # noqa: E402
from phylo.sbn import fit  # noqa: E402
from phylo.trees.splits import TopologySample  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))
METHODS = [("srf", "SRF"), ("ccd", "CCD"), ("sa", "SBN-SA"), ("em", "SBN-EM"),
           ("em-alpha", "SBN-EM-alpha"), ("em-ref", "EM, ref. rule"), ("em-long", "EM (long)")]
#: fit() settings per column (the issue's rule; the reference code's rule; a long run)
ISSUE_EM = dict(tol=1e-5, min_iter=0, max_iter=1000)
SETTINGS = {"em": ISSUE_EM, "em-alpha": dict(ISSUE_EM, alpha_prior="uniform"),
            "em-ref": dict(tol=1e-4, min_iter=51, max_iter=100),
            "em-long": dict(tol=1e-12, min_iter=1000, max_iter=1000)}
#: the published column each extra column is compared with (see the notes)
PUBLISHED_AS = {"EM, ref. rule": "SBN-EM", "EM (long)": "SBN-EM-alpha"}
GOLDEN_SAMPLES = 750001

NOTES = """\
How the EM columns depend on the number of EM iterations (replicate values in
benchmarks/results/sbn_kl.json):
* KL(golden ‖ EM fit) is not monotone in the number of EM iterations. EM maximises the
  likelihood of the short-run sample, so after the first tens of iterations it can
  fit the sample's noise and move away from the golden distribution (DS3, DS4: the
  long runs are worse), or it can sit on a plateau first: on DS2 (6-9 training
  topologies) the SBN-SA starting point is a near-stationary point, the first EM
  steps change the objective by less than 1e-5, and a tolerance rule alone stops
  there (SBN-EM = SBN-SA on DS2).
* The published numbers therefore reflect the iteration counts of the authors'
  notebook, which the repository does not record beyond the code's defaults. With
  the reference code's default rule (at least 51 iterations, |Δ| < 1e-4, at most 100)
  our EM reproduces the published SBN-EM on DS2 replicate by replicate (.0292 .0146
  .0092 .0222 .0226 .0261 .0232 .0166 .0181 .0169 published; the same to 3-4 digits
  here) and is within 10% on DS1 and DS4; on DS3 the issue's rule matches instead.
* The published DS2 SBN-EM-α values are those of an EM that has left the plateau:
  our 1000-iteration EM gives .0173 .0065 .0099 .0111 .0115 .0268 .0123 .0062 .0088
  .0091 against the published .0173 .0146 .0102 .0111 .0115 .0269 .0122 .0062 .0089
  .0091 (9 of 10 replicates agree to 2 digits).
* Every published mean is within 10% of at least one of our EM rules; the primary
  columns follow the issue's rule. phylo.sbn.fit runs at least 50 EM iterations by
  default (min_iter=50, the reference code's default) so that fits do not stop on a
  plateau; users with few training topologies should look at info.objective.
The α pseudo-counts are relative to one unit of tree mass (weights normalised to
frequencies), as in the reference code."""


def golden(ds: str) -> TopologySample:
    reps = [read_topologies(SHARED / "data" / ds / "golden_run" / f"rep_{r}" / f"{ds}.trprobs.gz")
            for r in range(1, 11)]
    g = TopologySample.concatenate(reps, weights=[GOLDEN_SAMPLES] * 10)
    g.counts[:] = np.round(g.counts)
    return g


def published():
    base = SHARED / "reference" / "published" / "sbn_nips2018"
    means, per = {}, {}
    with open(base / "real_data_kl_mean_DS1-4.csv") as fh:
        for row in csv.DictReader(fh):
            means[row["dataset"]] = {c: float(row[f"{PUBLISHED_AS.get(c, c)}_mean"])
                                     for _, c in METHODS}
    with open(base / "real_data_kl_per_rep_DS1-4.csv") as fh:
        for row in csv.DictReader(fh):
            per[(row["dataset"], int(row["rep"]))] = {c: float(row[PUBLISHED_AS.get(c, c)])
                                                      for _, c in METHODS}
    return means, per


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["DS1", "DS2", "DS3", "DS4"])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=1e-4)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        print(f"../shared not found at {SHARED}", file=sys.stderr)
        return 2
    means, per = published()
    rows, summary = [], []
    t_all = time.perf_counter()
    for ds in args.datasets:
        t0 = time.perf_counter()
        g = golden(ds)
        t_gold = time.perf_counter() - t0
        kls = {c: [] for _, c in METHODS}
        fit_secs = {c: [] for _, c in METHODS}
        for r in range(1, args.reps + 1):
            train = read_topologies(SHARED / "data" / ds / "short_run" / f"rep_{r}" / f"{ds}.trprobs.gz",
                                    taxa=g.taxa)
            row = {"dataset": ds, "rep": r, "short_run_unique_trees": train.n_topologies}
            for m, col in METHODS:
                t1 = time.perf_counter()
                method = "em" if m in ("em-ref", "em-long") else m
                model = fit(train, method, alpha=args.alpha, **SETTINGS.get(m, {}))
                fit_secs[col].append(time.perf_counter() - t1)
                res = model.kl(g, eps="machine")
                kls[col].append(res.kl)
                row[col] = res.kl
                row[f"{col}_published"] = per.get((ds, r), {}).get(col)
                if m in ("em", "em-alpha", "em-ref", "em-long"):
                    row[f"{col}_iters"] = model.info.n_iter
            rows.append(row)
            print(ds, r, {c: round(row[c], 5) for _, c in METHODS}, flush=True)
        s = {"dataset": ds, "golden_unique_trees": g.n_topologies, "golden_parse_s": t_gold,
             "reps": args.reps}
        for _, c in METHODS:
            s[f"{c}_mean"] = float(np.mean(kls[c]))
            s[f"{c}_sd"] = float(np.std(kls[c]))
            s[f"{c}_published"] = means[ds][c]
            s[f"{c}_rel_diff"] = s[f"{c}_mean"] / means[ds][c] - 1.0
            s[f"{c}_fit_s_mean"] = float(np.mean(fit_secs[c]))
        summary.append(s)
    total = time.perf_counter() - t_all
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": "sbn_kl", "protocol": __doc__.split("Usage")[0].strip(),
               "alpha": args.alpha, "reps": args.reps, "total_seconds": total,
               "summary": summary, "per_replicate": rows}
    (out / "sbn_kl.json").write_text(json.dumps(payload, indent=1))
    lines = ["# SBN Table 1 (real data): KL(golden ‖ estimate), mean over "
             f"{args.reps} short-run replicates", "",
             "ours / published (relative difference). q clamped at machine epsilon; "
             "golden = 10 pooled replicates (counts w×750001). \"EM, ref. rule\" is compared "
             "with the published SBN-EM and \"EM (long)\" with the published SBN-EM-α "
             "(see the notes).", "",
             "| data set | golden trees | " + " | ".join(c for _, c in METHODS) + " |",
             "|---|---:|" + "---:|" * len(METHODS)]
    for s in summary:
        cells = [f"{s[f'{c}_mean']:.4f} / {s[f'{c}_published']:.4f} ({100 * s[f'{c}_rel_diff']:+.1f}%)"
                 for _, c in METHODS]
        lines.append(f"| {s['dataset']} | {s['golden_unique_trees']} | " + " | ".join(cells) + " |")
    lines += ["", f"Total time {total:.1f} s (including Numba compilation).", "", NOTES]
    (out / "sbn_kl.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
