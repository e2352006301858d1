"""Benchmark: full tree log-likelihood evaluations per second, phylo vs BEAGLE 3.1.2.

Data: DS1 (27 taxa, 1949 sites, ../shared/data/DS1/DS1.fasta), topology = the first
tree of ``JC_no_gamma_credible_set_ds1`` (unrooted, 51 branches) with seeded branch
lengths U(0.02, 0.1). Models: JC69 and GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}.

Protocol (identical for both programs): the instance is prepared once per (alignment,
topology, model); every call gets a *new* branch-length vector (rows of a seeded
matrix, base lengths times exp(0.2 N(0,1))) and recomputes all transition matrices,
all partials and the root integration. Compilation / instance creation and the first
call are timed separately and excluded. Each configuration is timed in ``--blocks``
blocks of N calls (N calibrated to ~``--block-seconds``), configurations interleaved
block by block so that machine noise hits all of them alike; we report the best block
(evaluations/s) and the median, plus a paired estimate of the headline ratio
(back-to-back single calls of phylo and the best BEAGLE configuration, median of the
per-pair time ratios), which is the steadier number on a loaded machine.

Configurations
--------------
phylo: ``TreeLikelihood.log_likelihood`` single thread (``numba.set_num_threads(1)``);
``log_likelihood_unchecked`` and the raw Numba kernel (to estimate Python call
overhead); ``log_likelihood_batch`` with 1 and 2 Numba threads (per-evaluation
throughput); ``TreeLikelihood.gradient`` (all 51 branch derivatives; cost relative
to one likelihood).
BEAGLE (through ``benchmarks/_beagle.py``, ctypes): CPU-4State-SSE-Double and
CPU-4State-Double, compact tip states and tip partials, scaling none and manual,
``BEAGLE_FLAG_THREADING_NONE``; the best of these is "BEAGLE best". Also, for
reference: a BEAGLE two-pass gradient assembled from 3.1.2 calls (3.1.2 has no
gradient API; one ctypes call per branch) and BEAGLE with C++ threads (2).

Both programs must give the same log-likelihood on the benchmark's branch lengths
(|diff| < 1e-6, asserted and recorded).

Usage::

    python benchmarks/likelihood.py [--quick] [--out DIR]

Writes ``DIR/likelihood.json`` and ``DIR/likelihood.md`` (default
``benchmarks/results/``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import _beagle  # noqa: E402
from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402

SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))
MODELS = {"JC69": "JC", "GTR+G4": "GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}"}
AGREEMENT_TOL = 1e-6          # |lnL(phylo) - lnL(BEAGLE)|, asserted
BATCH_ROWS = 64               # rows per log_likelihood_batch call
TARGETS = {"single_thread_vs_beagle_best": 2.0, "gradient_cost_max": 2.0,
           "batched_2_threads_speedup_min": 1.5}


# --- inputs --------------------------------------------------------------------------
def load_inputs(seed: int = 1):
    aln_path = SHARED / "data" / "DS1" / "DS1.fasta"
    trees_path = SHARED / "data" / "DS1" / "JC_no_gamma_credible_set_ds1"
    if not aln_path.exists():
        sys.exit(f"DS1 not found at {aln_path}; set PHYLO_SHARED")
    aln = read_alignment(aln_path)
    first = trees_path.read_text().splitlines()[0]
    newick = first.split("\t", 1)[1] if "\t" in first else first
    tree = parse_newick(newick, taxa=aln.taxa, rooted=False, source=str(trees_path), line=1)
    rng = np.random.default_rng(seed)
    tree = tree.with_branch_lengths(rng.uniform(0.02, 0.1, size=tree.n_branches))
    return aln, tree, rng


def branch_length_rows(tree, n: int, rng) -> np.ndarray:
    base = tree.branch_lengths
    return np.ascontiguousarray(base * np.exp(0.2 * rng.standard_normal((n, base.size))))


# --- timing --------------------------------------------------------------------------
class Config:
    """One timed configuration: ``run(rows)`` evaluates every row of ``rows``."""

    def __init__(self, key, label, run, *, group, info=None, per_call_rows=1):
        self.key, self.label, self.run, self.group = key, label, run, group
        self.info = info or {}
        self.per_call_rows = per_call_rows
        self.blocks: list[float] = []   # evaluations/s per block
        self.cpu: list[float] = []      # process CPU time / wall time per block (cores busy)
        self.n = 0

    def calibrate(self, rows, seconds):
        t0 = time.perf_counter()
        k = 0
        while True:
            self.run(rows[k % len(rows):k % len(rows) + self.per_call_rows])
            k += self.per_call_rows
            if time.perf_counter() - t0 > 0.05 or k >= 5000:
                break
        per = (time.perf_counter() - t0) / k
        n = int(np.clip(seconds / per, 4 * self.per_call_rows, 20000))
        self.n = max(self.per_call_rows, n // self.per_call_rows * self.per_call_rows)

    def block(self, rows):
        n = self.n
        reps = (n + len(rows) - 1) // len(rows)
        c0 = time.process_time()
        t0 = time.perf_counter()
        done = 0
        for _ in range(reps):
            m = min(len(rows), n - done)
            self.run(rows[:m])
            done += m
        dt = time.perf_counter() - t0
        self.cpu.append((time.process_time() - c0) / dt)
        self.blocks.append(n / dt)

    def summary(self):
        return {"label": self.label, "group": self.group, "evals_per_s_best": max(self.blocks),
                "evals_per_s_median": statistics.median(self.blocks),
                "us_per_eval_best": 1e6 / max(self.blocks),
                "evals_per_block": self.n, "blocks": len(self.blocks),
                "evals_per_s_blocks": [round(b, 2) for b in self.blocks],
                "cpu_cores_busy_median": statistics.median(self.cpu), **self.info}


def _loop(fn):
    def run(rows):
        for r in rows:
            fn(r)
    return run


# --- the benchmark ---------------------------------------------------------------------
def bench_model(name, model_string, aln, tree, rng, args):
    import numba
    from phylo.likelihood import TreeLikelihood
    from phylo.models import Model
    from phylo._kernels import pruning as _k

    rows = branch_length_rows(tree, args.rows, rng)
    model = Model.from_string(model_string)
    setup = {}
    numba.set_num_threads(1)

    t0 = time.perf_counter()
    tl = TreeLikelihood(aln, tree, model)
    setup["phylo_prepare_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours0 = tl.log_likelihood(rows[0])
    setup["phylo_first_call_s (compile or cache load)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tl.gradient(rows[0])
    setup["phylo_first_gradient_s"] = time.perf_counter() - t0
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    t0 = time.perf_counter()
    tl.log_likelihood_batch(rows[:BATCH_ROWS])
    setup["phylo_first_batch_s"] = time.perf_counter() - t0
    numba.set_num_threads(1)

    # raw kernel (no validation, no method call): to estimate Python call overhead
    raw = None
    try:
        args_k = tl.kernel_arguments().loglik_args()
        kernel = _k.log_likelihood
        kernel(rows[0], *args_k)

        def raw(r, kernel=kernel, a=args_k):
            return kernel(r, *a)
    except (AttributeError, TypeError) as exc:  # kernel interface changed
        print(f"[{name}] raw kernel timing skipped: {exc}", file=sys.stderr)

    # model arrays for BEAGLE: exactly phylo's model (after +F resolution)
    arrays = _beagle.model_arrays(tl.model)

    configs: list[Config] = []

    def threads(n, fn):
        def run(rows_):
            numba.set_num_threads(n)
            fn(rows_)
        return run

    configs.append(Config("phylo_single", "phylo TreeLikelihood.log_likelihood (1 thread)",
                          threads(1, _loop(tl.log_likelihood)), group="phylo"))
    configs.append(Config("phylo_unchecked", "phylo log_likelihood_unchecked (1 thread)",
                          threads(1, _loop(tl.log_likelihood_unchecked)), group="phylo"))
    if raw is not None:
        configs.append(Config("phylo_raw_kernel", "phylo raw Numba kernel call (1 thread)",
                              threads(1, _loop(raw)), group="phylo"))
    configs.append(Config("phylo_gradient", "phylo TreeLikelihood.gradient (1 thread)",
                          threads(1, _loop(tl.gradient)), group="phylo"))
    for nt in (1, 2):
        configs.append(Config(f"phylo_batch_{nt}t",
                              f"phylo log_likelihood_batch, {nt} thread(s), {BATCH_ROWS} rows/call",
                              threads(nt, lambda r: tl.log_likelihood_batch(r)),
                              group="phylo", per_call_rows=BATCH_ROWS,
                              info={"threads": nt, "rows_per_call": BATCH_ROWS}))

    # BEAGLE
    beagle_instances = []
    beagle_setup = {}
    agreement = {}
    check_rows = rows[:10]
    ours_check = np.array([tl.log_likelihood(r) for r in check_rows])
    for vector in ("sse", "none"):
        for tip in ("states", "partials"):
            for scaling in ("none", "manual"):
                key = f"beagle_{vector}_{tip}_{scaling}"
                t0 = time.perf_counter()
                try:
                    bl = _beagle.BeagleLikelihood(aln, tl.tree, arrays, tip_mode=tip,
                                                  scaling=scaling, vector=vector, threads=1)
                except _beagle.BeagleError as exc:
                    print(f"[{name}] {key}: {exc}", file=sys.stderr)
                    continue
                t_create = time.perf_counter() - t0
                t0 = time.perf_counter()
                bl.log_likelihood(rows[0])
                beagle_setup[key] = {"create_s": t_create, "first_call_s": time.perf_counter() - t0}
                beagle_instances.append(bl)
                theirs = bl.log_likelihood_many(check_rows)
                diff = float(np.max(np.abs(theirs - ours_check)))
                agreement[key] = diff
                assert diff < AGREEMENT_TOL, f"{name} {key}: phylo and BEAGLE differ by {diff}"
                configs.append(Config(key, f"BEAGLE {bl.implementation}, tip {tip}, scaling {scaling}",
                                      _loop(bl.log_likelihood), group="beagle",
                                      info=bl.describe()))
    # BEAGLE gradient (two-pass, assembled from 3.1.2 calls) and threads=2, for reference
    extra = {}
    try:
        bg = _beagle.BeagleLikelihood(aln, tl.tree, arrays, tip_mode="states", scaling="none",
                                      vector="sse", gradient=True)
        beagle_instances.append(bg)
        lb, gb = bg.gradient(rows[0])
        lo, go = tl.gradient(rows[0])
        extra["gradient_max_abs_diff_phylo_vs_beagle"] = float(np.max(np.abs(gb - go)))
        configs.append(Config("beagle_gradient_sse_states",
                              "BEAGLE two-pass gradient (3.1.2 calls via ctypes; 1 call/branch)",
                              _loop(bg.gradient), group="beagle_extra", info=bg.describe()))
        configs.append(Config("beagle_lnl_for_gradient",
                              f"BEAGLE {bg.implementation}, tip states, scaling none "
                              "(the gradient instance)",
                              _loop(bg.log_likelihood), group="beagle", info=bg.describe()))
    except _beagle.BeagleError as exc:
        print(f"[{name}] BEAGLE gradient skipped: {exc}", file=sys.stderr)
    try:
        bt = _beagle.BeagleLikelihood(aln, tl.tree, arrays, tip_mode="states", scaling="none",
                                      vector="sse", threads=2)
        beagle_instances.append(bt)
        configs.append(Config("beagle_sse_states_2threads",
                              f"BEAGLE {bt.implementation}, tip states, C++ threads = 2",
                              _loop(bt.log_likelihood), group="beagle_extra", info=bt.describe()))
    except _beagle.BeagleError as exc:
        print(f"[{name}] BEAGLE threads=2 skipped: {exc}", file=sys.stderr)

    # calibrate, then interleaved blocks
    for c in configs:
        c.calibrate(rows, args.block_seconds)
    for _ in range(args.blocks):
        for c in configs:
            c.block(rows)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))

    res = {c.key: c.summary() for c in configs}
    beagle_keys = [k for k, v in res.items() if v["group"] == "beagle"]
    best_key = max(beagle_keys, key=lambda k: res[k]["evals_per_s_best"]) if beagle_keys else None
    best_med_key = max(beagle_keys, key=lambda k: res[k]["evals_per_s_median"]) if beagle_keys else None
    ours = res["phylo_single"]
    by_key = {c.key: c for c in configs}
    out = {"model": model_string, "model_resolved": tl.model.to_string(),
           "n_categories": int(arrays.category_rates.size),
           "lnL_at_first_row": {"phylo": ours0,
                                "beagle": beagle_instances[0].log_likelihood(rows[0])
                                if beagle_instances else None},
           "agreement_max_abs_diff_10_rows": agreement, "setup_s": {**setup, "beagle": beagle_setup},
           "configs": res, **extra}
    if best_key:
        out["beagle_best"] = best_key
        out["ratio_single_vs_beagle_best"] = ours["evals_per_s_best"] / res[best_key]["evals_per_s_best"]
        out["ratio_single_vs_beagle_best_median"] = (ours["evals_per_s_median"]
                                                     / res[best_med_key]["evals_per_s_median"])
        out["paired_single_vs_beagle_best"] = paired_ratio(
            by_key["phylo_single"].run, by_key[best_key].run, rows, args.overhead_pairs)
        out["ratio_batch2_vs_beagle_best"] = (res["phylo_batch_2t"]["evals_per_s_best"]
                                              / res[best_key]["evals_per_s_best"])
    out["paired_gradient_cost"] = paired_ratio(by_key["phylo_single"].run,
                                               by_key["phylo_gradient"].run, rows,
                                               max(100, args.overhead_pairs // 4))
    out["gradient_cost_vs_likelihood"] = ours["evals_per_s_best"] / res["phylo_gradient"]["evals_per_s_best"]
    out["gradient_cost_vs_likelihood_median"] = (ours["evals_per_s_median"]
                                                 / res["phylo_gradient"]["evals_per_s_median"])
    out["batch_speedup_2_threads"] = (res["phylo_batch_2t"]["evals_per_s_best"]
                                      / res["phylo_batch_1t"]["evals_per_s_best"])
    out["batch_speedup_2_threads_median"] = (res["phylo_batch_2t"]["evals_per_s_median"]
                                             / res["phylo_batch_1t"]["evals_per_s_median"])
    out["python_overhead"] = paired_overhead(tl, raw, rows, args.overhead_pairs)
    if "beagle_gradient_sse_states" in res:
        out["beagle_gradient_cost_vs_likelihood"] = (res["beagle_lnl_for_gradient"]["evals_per_s_best"]
                                                     / res["beagle_gradient_sse_states"]["evals_per_s_best"])
    for bl in beagle_instances:
        bl.close()
    return out


def paired_ratio(ours_run, peer_run, rows, pairs: int) -> dict:
    """Speed ratio from back-to-back single calls (ours, then the peer, same row),
    ``pairs`` times: the median of t_peer / t_ours per pair. Slow drifts in machine load
    hit both calls of a pair, so this is steadier than comparing separate blocks."""
    pc = time.perf_counter_ns
    t_ours, t_peer = np.empty(pairs), np.empty(pairs)
    for i in range(pairs):
        r = rows[i % len(rows):i % len(rows) + 1]
        t0 = pc()
        ours_run(r)
        t1 = pc()
        peer_run(r)
        t2 = pc()
        t_ours[i], t_peer[i] = t1 - t0, t2 - t1
    return {"pairs": pairs, "ratio_median": float(np.median(t_peer / t_ours)),
            "ours_us_median": float(np.median(t_ours) / 1e3),
            "peer_us_median": float(np.median(t_peer) / 1e3)}


def paired_overhead(tl, raw, rows, pairs: int) -> dict:
    """Python call overhead, measured pairwise: API call, unchecked call and raw kernel
    call back to back on the same row, ``pairs`` times; the median of the per-pair
    differences is robust to the machine's noise (which hits both calls of a pair)."""
    import numba
    numba.set_num_threads(1)
    out: dict = {"pairs": pairs}
    if raw is None:
        return out
    pc = time.perf_counter_ns
    api, unc, ker = np.empty(pairs), np.empty(pairs), np.empty(pairs)
    for i in range(pairs):
        r = rows[i % len(rows)]
        t0 = pc()
        tl.log_likelihood(r)
        t1 = pc()
        tl.log_likelihood_unchecked(r)
        t2 = pc()
        raw(r)
        t3 = pc()
        api[i], unc[i], ker[i] = t1 - t0, t2 - t1, t3 - t2
    api, unc, ker = api / 1e3, unc / 1e3, ker / 1e3
    out.update({"api_us_median": float(np.median(api)), "unchecked_us_median": float(np.median(unc)),
                "raw_kernel_us_median": float(np.median(ker)),
                "api_minus_raw_us_median": float(np.median(api - ker)),
                "unchecked_minus_raw_us_median": float(np.median(unc - ker))})
    out["api_overhead_fraction"] = out["api_minus_raw_us_median"] / out["api_us_median"]
    return out


def environment():
    import numba
    env = {"python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
           "platform": platform.platform(), "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "numba_num_threads": numba.config.NUMBA_NUM_THREADS,
           "numba_threading_layer": None}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    env["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        env["beagle_version"] = _beagle.version()
        env["beagle_resources"] = _beagle.resources()
    except _beagle.BeagleUnavailableError as exc:
        env["beagle_version"] = None
        env["beagle_error"] = str(exc)
    try:
        import subprocess
        env["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                           capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return env


def markdown(result) -> str:
    lines = ["# Likelihood benchmark: phylo vs BEAGLE", "",
             f"DS1 ({result['data']['n_taxa']} taxa, {result['data']['n_sites']} sites, "
             f"{result['data']['n_patterns']} patterns), first topology of the JC credible set, "
             f"{result['data']['n_branches']} branches; new branch lengths every call; "
             f"best of {result['settings']['blocks']} blocks (median in brackets). "
             f"CPU: {result['environment'].get('cpu', '?')}, {result['environment']['cpu_count']} "
             f"cores; BEAGLE {result['environment'].get('beagle_version')}; "
             f"numba {result['environment']['numba']}. Load average (1 min) at start/end: "
             f"{result['environment']['loadavg_start'][0]:.2f} / "
             f"{result['environment']['loadavg_end'][0]:.2f} (other work on the 2 cores "
             "depresses the 2-thread numbers).", ""]
    for name, m in result["models"].items():
        lines += [f"## {name}: `{m['model']}`", "",
                  "| configuration | evaluations/s | µs/eval |", "|---|---:|---:|"]
        for key, c in m["configs"].items():
            star = " **(BEAGLE best)**" if key == m.get("beagle_best") else ""
            lines.append(f"| {c['label']}{star} | {c['evals_per_s_best']:.0f} "
                         f"({c['evals_per_s_median']:.0f}) | {c['us_per_eval_best']:.1f} |")
        lines.append("")
        if "ratio_single_vs_beagle_best" in m:
            t = TARGETS["single_thread_vs_beagle_best"]
            r = m["ratio_single_vs_beagle_best"]
            lines.append(f"- phylo single thread / BEAGLE best: **{r:.2f}×** "
                         f"(median {m['ratio_single_vs_beagle_best_median']:.2f}×; target ≥ {t}×: "
                         f"{'met' if r >= t else 'NOT met'})")
            p = m["paired_single_vs_beagle_best"]
            lines.append(f"- paired estimate ({p['pairs']} back-to-back call pairs, median of "
                         f"t_BEAGLE / t_phylo): **{p['ratio_median']:.2f}×** "
                         f"({p['ours_us_median']:.1f} µs vs {p['peer_us_median']:.1f} µs)")
            lines.append(f"- phylo batched (2 threads) / BEAGLE best: {m['ratio_batch2_vs_beagle_best']:.2f}×")
        g = m["gradient_cost_vs_likelihood"]
        lines.append(f"- gradient cost = {g:.2f} likelihoods (median {m['gradient_cost_vs_likelihood_median']:.2f}; "
                     f"target ≤ {TARGETS['gradient_cost_max']}: {'met' if g <= TARGETS['gradient_cost_max'] else 'NOT met'})")
        pg = m["paired_gradient_cost"]
        lines.append(f"- paired gradient cost ({pg['pairs']} back-to-back likelihood/gradient pairs, "
                     f"median of t_gradient / t_likelihood): **{pg['ratio_median']:.2f}** "
                     f"({pg['peer_us_median']:.1f} µs vs {pg['ours_us_median']:.1f} µs)")
        if "beagle_gradient_cost_vs_likelihood" in m:
            lines.append(f"- BEAGLE two-pass gradient (built from 3.1.2 calls) = "
                         f"{m['beagle_gradient_cost_vs_likelihood']:.2f} BEAGLE likelihoods; "
                         f"max |Δ gradient| vs phylo {m.get('gradient_max_abs_diff_phylo_vs_beagle', float('nan')):.1e}")
        b = m["batch_speedup_2_threads"]
        busy = m["configs"]["phylo_batch_2t"]["cpu_cores_busy_median"]
        lines.append(f"- batched 2 threads / 1 thread: {b:.2f}× (median {m['batch_speedup_2_threads_median']:.2f}×; "
                     f"speed-up ≥ {TARGETS['batched_2_threads_speedup_min']}: "
                     f"{'yes' if b >= TARGETS['batched_2_threads_speedup_min'] else 'NO'}); process CPU "
                     f"time / wall time during the 2-thread batch = {busy:.2f} cores "
                     f"(1 thread: {m['configs']['phylo_batch_1t']['cpu_cores_busy_median']:.2f})")
        o = m["python_overhead"]
        if "raw_kernel_us_median" in o:
            lines.append(f"- Python call overhead (median of {o['pairs']} back-to-back pairs): "
                         f"API {o['api_us_median']:.1f} µs vs raw kernel "
                         f"{o['raw_kernel_us_median']:.1f} µs → {o['api_minus_raw_us_median']:.2f} µs/call "
                         f"({100 * o['api_overhead_fraction']:.1f}%); unchecked path "
                         f"{o['unchecked_minus_raw_us_median']:+.2f} µs")
        agree = max(m["agreement_max_abs_diff_10_rows"].values()) if m["agreement_max_abs_diff_10_rows"] else float("nan")
        lines.append(f"- agreement: max |lnL(phylo) − lnL(BEAGLE)| over 10 branch-length vectors and all "
                     f"BEAGLE configurations = {agree:.1e} (asserted < {AGREEMENT_TOL:g}); "
                     f"lnL at row 0 = {m['lnL_at_first_row']['phylo']:.6f}")
        s = m["setup_s"]
        lines.append(f"- excluded setup: phylo prepare {s['phylo_prepare_s'] * 1e3:.1f} ms, first call "
                     f"{s['phylo_first_call_s (compile or cache load)']:.2f} s, first gradient "
                     f"{s['phylo_first_gradient_s']:.2f} s, first batch {s['phylo_first_batch_s']:.2f} s; "
                     "BEAGLE create " + ", ".join(f"{v['create_s'] * 1e3:.1f} ms"
                                                  for v in list(s['beagle'].values())[:1]))
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short blocks (smoke test, ~20 s)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="output folder")
    ap.add_argument("--blocks", type=int, default=None, help="timed blocks per configuration (7; --quick 3)")
    ap.add_argument("--block-seconds", type=float, default=None, help="target seconds per block (0.4)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.blocks = args.blocks or (3 if args.quick else 7)
    args.block_seconds = args.block_seconds or (0.05 if args.quick else 0.4)
    args.rows = 256
    args.overhead_pairs = 300 if args.quick else 2000
    if not _beagle.available():
        print("WARNING: BEAGLE is not installed; timing phylo only (install: "
              + _beagle.INSTALL_HINT + ")", file=sys.stderr)

    aln, tree, rng = load_inputs(args.seed)
    result = {"benchmark": "likelihood", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "settings": {"quick": args.quick, "blocks": args.blocks,
                           "block_seconds": args.block_seconds, "seed": args.seed,
                           "batch_rows": BATCH_ROWS, "distinct_branch_length_rows": args.rows},
              "data": {"alignment": "DS1/DS1.fasta", "n_taxa": aln.n_taxa, "n_sites": aln.n_sites,
                       "n_patterns": aln.n_patterns,
                       "tree": "DS1/JC_no_gamma_credible_set_ds1 line 1 (topology only)",
                       "n_branches": tree.n_branches,
                       "branch_lengths": "U(0.02, 0.1) seeded; per call x exp(0.2 N(0,1))"},
              "targets": TARGETS, "environment": environment(), "models": {}}
    result["environment"]["loadavg_start"] = os.getloadavg()
    for name, model_string in MODELS.items():
        print(f"[likelihood] {name} ...", file=sys.stderr, flush=True)
        result["models"][name] = bench_model(name, model_string, aln, tree, rng, args)
    result["environment"]["loadavg_end"] = os.getloadavg()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "likelihood.json").write_text(json.dumps(result, indent=1, default=float))
    md = markdown(result)
    (out / "likelihood.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
