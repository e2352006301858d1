"""Benchmark: pattern-parallel evaluation on a large alignment, phylo vs BEAGLE 3.1.2
and IQ-TREE 2, plus how the time grows with taxa and patterns.

Cases (same run): a simulated 500-taxon x 20,000-site alignment under
GTR{1,2,1,1,3}+F{0.3,0.2,0.2,0.3}+G4{0.5} on a seeded random tree (mean branch length
0.1), and DS1 (27 taxa, 1,949 sites) on the first tree of its credible set with seeded
lengths, same model. For each: one ``TreeLikelihood.log_likelihood`` at 1 and 2 threads
(``threads=``), the gradient at 1 and 2 threads, a batch of 64 branch-length vectors at
2 threads with the peak extra resident memory during the batch (sampled every 2 ms from
/proc/self/statm) against one evaluation's partials; the single-block kernels (one
thread) for reference; BEAGLE (``benchmarks/_beagle.py``: SSE and AVX, tip states,
manual rescaling, ``BEAGLE_FLAG_THREADING_NONE`` and C++ threads = 2); IQ-TREE 2
(``iqtree2 -te TREE -blfix`` with every model parameter fixed, ``-nt 1`` and ``-nt 2``):
its "Total wall-clock time used" from the log, which includes reading the alignment and
every evaluation it makes, so it is an upper bound on one evaluation. Timings are the
best of ``--reps`` calls, each with new branch lengths (base x exp(0.2 N(0,1))).

The sweep times one evaluation (1 and 2 threads) for 100, 500, 2,000 taxa at 2,000
sites and for 1e3, 1e4, 1e5 sites at 100 taxa.

The machine's load (``os.getloadavg``) is recorded before and after: on a shared
machine the 2-thread numbers are depressed by whatever else runs.

Usage::

    python benchmarks/large_data.py [--quick] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import _beagle  # noqa: E402
from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402
from phylo.likelihood import TreeLikelihood  # noqa: E402
from phylo.likelihood.simulate import simulate_alignment  # noqa: E402
from phylo.models import Model  # noqa: E402
from phylo.trees.random import random_tree  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))
MODEL = "GTR{1,2,1,1,3}+F{0.3,0.2,0.2,0.3}+G4{0.5}"
IQ_MODEL = "GTR{1,2,1,1,3,1}+F{0.3,0.2,0.2,0.3}+G4{0.5}"
BATCH = 64
AGREEMENT_TOL = 1e-6      # |lnL(phylo) - lnL(peer)| per site-summed lnL, relative
TARGETS = {"speedup_2_threads_large_min": 1.8, "vs_beagle_best_equal_threads_min": 2.0,
           "batch_memory_over_partials_per_thread_max": 2.0}


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Peak resident memory above the level at entry, sampled every 2 ms."""

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._t.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def extra(self) -> int:
        return self.peak - self.base


def best_time(fn, rows, reps, cpu=None):
    """(best, median) wall seconds per call; with a dict ``cpu``, also the calling
    thread's CPU seconds (best) in cpu["cpu_best_s"]: for one-thread configurations
    the steadier number on a loaded machine (waiting for a core is not counted)."""
    ts, cs = [], []
    for i in range(reps):
        r = rows[i % len(rows)]
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn(r)
        ts.append(time.perf_counter() - t0)
        cs.append(time.thread_time() - c0)
    if cpu is not None:
        cpu["cpu_best_s"] = min(cs)
    return min(ts), float(np.median(ts))


def rows_for(tree, n, rng):
    base = tree.branch_lengths
    return np.ascontiguousarray(base * np.exp(0.2 * rng.standard_normal((n, base.size))))


def iqtree(aln_path: Path, tree_path: Path, nt: int, work: Path) -> dict:
    exe = "iqtree2"
    pre = work / f"iq_nt{nt}"
    cmd = [exe, "-s", str(aln_path), "-te", str(tree_path), "-blfix", "-m", IQ_MODEL,
           "-nt", str(nt), "-redo", "-quiet", "-pre", str(pre), "-seed", "1"]
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    outer = time.perf_counter() - t0
    log = (pre.parent / (pre.name + ".log")).read_text()
    wall = re.search(r"Total wall-clock time used: ([0-9.]+) sec", log)
    lnl = re.search(r"Optimal log-likelihood: (-?[0-9.]+)", log)
    return {"threads": nt, "total_wall_s_from_log": float(wall.group(1)) if wall else None,
            "process_wall_s": outer, "log_likelihood": float(lnl.group(1)) if lnl else None,
            "command": " ".join(cmd)}


def beagle_configs(aln, tree, model, rows, reps):
    out = {}
    arrays = _beagle.model_arrays(model)
    for vector in ("sse", "avx"):
        for nt in (1, 2):
            key = f"beagle_{vector}_states_manual_{nt}t"
            try:
                b = _beagle.BeagleLikelihood(aln, tree, arrays, tip_mode="states",
                                             scaling="manual", vector=vector, threads=nt)
            except _beagle.BeagleError as exc:
                out[key] = {"error": str(exc)}
                continue
            try:
                b.log_likelihood(rows[0])
                cpu = {}
                best, med = best_time(b.log_likelihood, rows, reps, cpu if nt == 1 else None)
                out[key] = {"threads": nt, "best_s": best, "median_s": med, **cpu,
                            "log_likelihood_row0": b.log_likelihood(rows[0]),
                            "implementation": b.implementation}
            finally:
                b.close()
    return out


def bench_case(name, aln, tree, args, work: Path) -> dict:
    model = Model.from_string(MODEL).with_empirical_frequencies(aln)
    rng = np.random.default_rng(3)
    rows = rows_for(tree, max(BATCH, args.reps), rng)
    res = {"n_taxa": aln.n_taxa, "n_sites": aln.n_sites, "n_patterns": aln.n_patterns}
    t1 = TreeLikelihood(aln, tree, model, threads=1)
    t2 = TreeLikelihood(aln, tree, model, threads=2)
    tl_tree = t1.tree
    res["n_blocks"], res["block_size"] = t1.n_blocks, t1.block_size
    n_int = tl_tree.n_nodes - tl_tree.n_leaves
    partials = n_int * 4 * 4 * t1.block_size * t1.n_blocks * 8
    res["partials_bytes_one_evaluation"] = partials
    t0 = time.perf_counter()
    t1.log_likelihood(rows[0]), t2.log_likelihood(rows[0])
    res["first_calls_s"] = time.perf_counter() - t0
    lnl0 = t1.log_likelihood(rows[0])
    assert t2.log_likelihood(rows[0]) == lnl0          # same bits, any thread count
    res["log_likelihood_row0"] = lnl0
    for key, tl in (("loglik_1t", t1), ("loglik_2t", t2)):
        cpu = {}
        b, m = best_time(tl.log_likelihood, rows, args.reps, cpu if tl is t1 else None)
        res[key] = {"best_s": b, "median_s": m, **cpu}
    if t1.n_blocks > 1:
        one = TreeLikelihood(aln, tree, model, block_size=1 << 30)
        one.log_likelihood(rows[0])
        cpu = {}
        b, m = best_time(one.log_likelihood, rows, args.reps, cpu)
        res["loglik_single_block_1t"] = {"best_s": b, "median_s": m, **cpu,
                                         "log_likelihood_row0": one.log_likelihood(rows[0])}
        res["blocked_over_single_block_cpu_1t"] = (res["loglik_1t"]["cpu_best_s"]
                                                   / cpu["cpu_best_s"])
        del one
    for key, tl in (("gradient_1t", t1), ("gradient_2t", t2)):
        tl.gradient(rows[0])
        cpu = {}
        b, m = best_time(tl.gradient, rows, max(2, args.reps // 2), cpu if tl is t1 else None)
        res[key] = {"best_s": b, "median_s": m, **cpu}
    g1, g2 = t1.gradient(rows[0])[1], t2.gradient(rows[0])[1]
    assert np.array_equal(g1, g2)
    t1._grad_buffers = t2._grad_buffers = None      # freed before the batch's memory
    t2.log_likelihood_batch(rows[:2])
    with PeakRss() as mem:
        t0 = time.perf_counter()
        vals = t2.log_likelihood_batch(rows[:BATCH])
        dt = time.perf_counter() - t0
    assert vals[0] == lnl0
    res["batch64_2t"] = {"wall_s": dt, "per_eval_s": dt / BATCH, "peak_extra_rss_bytes": mem.extra,
                         "over_partials_per_thread": mem.extra / (2 * partials) if partials else None,
                         "over_one_evaluation_partials": mem.extra / partials}
    res["speedup_2_threads"] = res["loglik_1t"]["best_s"] / res["loglik_2t"]["best_s"]
    res["gradient_over_loglik_1t"] = res["gradient_1t"]["best_s"] / res["loglik_1t"]["best_s"]
    res["beagle"] = beagle_configs(aln, tl_tree, model, rows, args.reps)
    for nt in (1, 2):
        ok = [v for v in res["beagle"].values() if v.get("threads") == nt and "best_s" in v]
        if ok:
            best = min(ok, key=lambda v: v["best_s"])
            res[f"vs_beagle_best_{nt}t"] = best["best_s"] / res[f"loglik_{nt}t"]["best_s"]
            res[f"agreement_beagle_{nt}t"] = abs(best["log_likelihood_row0"] - lnl0)
            if nt == 1:
                res["vs_beagle_best_1t_cpu"] = (min(v["cpu_best_s"] for v in ok)
                                                / res["loglik_1t"]["cpu_best_s"])
    # IQ-TREE on the same tree (first row's lengths) and fixed parameters
    aln_path = work / f"{name}.fasta"
    tree_path = work / f"{name}.nwk"
    aln_path.write_text(aln.to_fasta())
    tree_path.write_text(tl_tree.with_branch_lengths(rows[0]).to_newick() + "\n")
    res["iqtree"] = [iqtree(aln_path, tree_path, nt, work) for nt in (1, 2)]
    for r in res["iqtree"]:
        if r.get("log_likelihood") is not None:
            r["abs_diff_vs_phylo"] = abs(r["log_likelihood"] - lnl0)   # IQ-TREE logs 3 decimals
    return res


def sweep(args) -> list:
    out = []
    model = Model.from_string(MODEL)
    points = [(100, 2000), (500, 2000), (2000, 2000), (100, 1000), (100, 10000), (100, 100000)]
    if args.quick:
        points = [(100, 2000), (500, 2000), (100, 10000)]
    for n, sites in points:
        tree = random_tree(n, seed=n, branch_length_rate=10.0)
        aln = simulate_alignment(tree, model, sites, seed=n + sites)
        rows = rows_for(tree.unrooted() if tree.rooted else tree, 4, np.random.default_rng(1))
        rec = {"n_taxa": n, "n_sites": sites, "n_patterns": aln.n_patterns}
        for nt in (1, 2):
            tl = TreeLikelihood(aln, tree, model, threads=nt)
            rows = rows_for(tl.tree, 4, np.random.default_rng(1))
            tl.log_likelihood(rows[0])
            rec["n_blocks"] = tl.n_blocks
            cpu = {}
            rec[f"loglik_{nt}t_s"] = best_time(tl.log_likelihood, rows, max(3, args.reps // 2),
                                               cpu)[0]
            if nt == 1:
                rec["loglik_1t_cpu_s"] = cpu["cpu_best_s"]
        rec["ns_per_node_pattern_1t_cpu"] = rec["loglik_1t_cpu_s"] / ((n - 1) * aln.n_patterns) * 1e9
        out.append(rec)
        print(f"[sweep] {rec}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, short sweep")
    ap.add_argument("--reps", type=int, default=None, help="timed calls per configuration")
    ap.add_argument("--taxa", type=int, default=500)
    ap.add_argument("--sites", type=int, default=20000)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    args.reps = args.reps or (3 if args.quick else 6)
    import numba
    out = {"benchmark": "large_data", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "targets": TARGETS, "model": MODEL,
           "environment": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "numba": numba.__version__, "numba_threads_max": numba.config.NUMBA_NUM_THREADS,
                           "beagle": _beagle.version() if _beagle.available() else None,
                           "load_average_before": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = Model.from_string(MODEL)
        tree = random_tree(args.taxa, seed=1, branch_length_rate=10.0)
        t0 = time.perf_counter()
        aln = simulate_alignment(tree, model, args.sites, seed=2)
        out["simulate_s"] = time.perf_counter() - t0
        cases = {}
        cases[f"sim_{args.taxa}x{args.sites}"] = bench_case("large", aln, tree.unrooted()
                                                            if tree.rooted else tree, args, work)
        print(f"[large] {json.dumps(cases[f'sim_{args.taxa}x{args.sites}'])[:2000]}", file=sys.stderr, flush=True)
        ds1 = SHARED / "data" / "DS1" / "DS1.fasta"
        trees = SHARED / "data" / "DS1" / "JC_no_gamma_credible_set_ds1"
        if ds1.exists():
            a1 = read_alignment(ds1)
            first = trees.read_text().splitlines()[0]
            nwk = first.split("\t", 1)[1] if "\t" in first else first
            t1 = parse_newick(nwk, taxa=a1.taxa, rooted=False)
            t1 = t1.with_branch_lengths(np.random.default_rng(1).uniform(0.02, 0.1, t1.n_branches))
            cases["DS1"] = bench_case("DS1", a1, t1, args, work)
        out["cases"] = cases
    out["sweep"] = sweep(args)
    out["environment"]["load_average_after"] = os.getloadavg()
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "large_data.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if not isinstance(vv, (dict, list))}
                      for k, v in cases.items()}, indent=1))


if __name__ == "__main__":
    main()
