"""SBN fitting speed and memory against the number of trees.

1. The DS1 short run (rep 1): full SBN-EM fit (tol 1e-5), one core, steady state
   (Numba compile timed separately); the reference code takes 3.9 s per EM iteration.
2. Scaling: samples of 10³…10⁶ trees drawn from an SBN-EM model fitted to DS1
   (seeded; sizes above 10⁵ repeat a 10⁵ draw, i.e. scale its counts), as counts; reported: distinct topologies, fit time of
   SBN-SA and SBN-EM, and peak traced memory (tracemalloc) of the EM fit.

Usage: python benchmarks/sbn_speed.py [--sizes 1000 10000 100000 1000000] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    import numba
    numba.set_num_threads(1)
    from phylo.io.trees import read_topologies
    from phylo.sbn import fit
    res = {"benchmark": "sbn_speed", "threads": 1}
    t0 = time.perf_counter()
    train = read_topologies(SHARED / "data" / "DS1" / "short_run" / "rep_1" / "DS1.trprobs.gz")
    res["ds1_parse_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit(train, "em", max_iter=2)
    res["compile_or_cache_load_s"] = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        m = fit(train, "em")
        times.append(time.perf_counter() - t0)
    res["ds1_em_fit_s"] = min(times)
    res["ds1_em_iterations"] = m.info.n_iter
    res["ds1_em_s_per_iteration"] = min(times) / max(1, m.info.n_iter)
    res["ds1_topologies"] = train.n_topologies
    res["reference_code_s_per_iteration"] = 3.9
    rows = []
    for n in args.sizes:
        t0 = time.perf_counter()
        draw = min(n, 100000)
        smp = m.sample(draw, seed=n)
        if n > draw:   # synthetic repetition: the same draws, each counted n/draw times
            smp.counts *= n / draw
            smp.n_trees = n
        t_sample = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit(smp, "sa")
        t_sa = time.perf_counter() - t0
        tracemalloc.start()
        t0 = time.perf_counter()
        em = fit(smp, "em")
        t_em = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append({"n_trees": n, "distinct_topologies": smp.n_topologies, "sample_s": t_sample,
                     "sa_fit_s": t_sa, "em_fit_s": t_em, "em_iterations": em.info.n_iter,
                     "em_peak_mb": peak / 1e6})
        print(rows[-1], flush=True)
    res["scaling"] = rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sbn_speed.json").write_text(json.dumps(res, indent=1))
    md = ["# SBN fit speed (one core)", "",
          f"DS1 short run rep 1 ({res['ds1_topologies']} topologies): SBN-EM fit "
          f"{res['ds1_em_fit_s']:.3f} s, {res['ds1_em_iterations']} iterations "
          f"({1000 * res['ds1_em_s_per_iteration']:.1f} ms/iteration; reference code 3.9 s/iteration, "
          f"ratio {3.9 / res['ds1_em_s_per_iteration']:.0f}×). Compile/cache load "
          f"{res['compile_or_cache_load_s']:.1f} s.", "",
          "Scaling (trees drawn from the DS1 SBN-EM model; fits see distinct topologies with counts):", "",
          "| trees | distinct topologies | draw s | SA fit s | EM fit s | EM iters | EM peak MB |",
          "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['n_trees']} | {r['distinct_topologies']} | {r['sample_s']:.2f} | {r['sa_fit_s']:.3f} | "
                  f"{r['em_fit_s']:.3f} | {r['em_iterations']} | {r['em_peak_mb']:.1f} |")
    (out / "sbn_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
