"""Benchmark: batched tree likelihoods on a CUDA GPU against the CPU batch path.

Cases (full mode): DS1 (27 taxa, 1949 sites, ../shared/data/DS1; the first tree of
``JC_no_gamma_credible_set_ds1`` with seeded lengths U(0.02, 0.1), as
``benchmarks/likelihood.py``) under JC69 and GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5},
and a simulated large case: 500 taxa × 20,000 sites (a seeded uniform random tree,
simulated under the same GTR+Γ4 model).

Protocol: each batch item is a new branch-length vector (base lengths times
exp(0.2 N(0,1))). A call is ``CudaLikelihood.log_likelihood_batch`` (B rows): the host
→ device copy of the lengths, the transition-matrix, pruning and reduction kernels
and the copy of the B results back are all inside the timed call (tip data, weights,
model and topology were copied once, at construction, which is timed separately with
compilation). Per batch size B (1, 4, 16, …, 32768, stopping early once one call takes
longer than ``--max-call-seconds``) calls repeat for ``--seconds``; evaluations/s =
B / median call time. The gradient (``gradient_batch``, all branches) is timed at B = 1
and at the largest B reached by the gradient, as a cost in likelihood evaluations. The
CPU path is ``TreeLikelihood.log_likelihood_batch`` (Numba threads = all cores) in
the same run; the crossover is the smallest B where the GPU's evaluations/s exceed
the CPU's at that B. GPU and CPU must agree on ln L (< 1e-6, asserted and recorded).

``--quick`` is a smoke run for the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, no GPU):
tiny simulated stand-ins (6 taxa × 32 sites, 10 taxa × 48 sites) and B ≤ 4. Its
numbers are labelled ``simulator`` and are NOT speed measurements.

Usage::

    python benchmarks/gpu.py [--quick] [--out DIR] [--seconds S] [--max-batch B]
                             [--max-call-seconds S] [--cases ds1-jc ds1-gtr large-gtr]

Writes ``DIR/gpu.json`` and ``DIR/gpu.md`` (``gpu_quick_simulator.*`` with --quick).
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

from benchmarks.likelihood import load_inputs  # noqa: E402

GTR_G4 = "GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}"
AGREEMENT_TOL = 1e-6           # |lnL(GPU) - lnL(CPU)|, asserted
#: FP64 (non-tensor) peak of the GPUs we know, for the fraction-of-peak figure
FP64_PEAK = {"H200": 34e12, "H100": 34e12, "A100": 9.7e12}
TARGETS = {"DS1 GTR+G4 evals/s": 1.5e6, "500 taxa GTR+G4 evals/s": 3000,
           "500 taxa fraction of FP64 peak": 0.25, "gradient cost (likelihoods)": 3.0}


# --- cases ---------------------------------------------------------------------------
def ds1_case():
    """DS1 and its most probable topology with seeded uniform(0.02, 0.1) branch
    lengths: the inputs of benchmarks/likelihood.py, so the two benchmarks time
    the same likelihood."""
    aln, tree, _ = load_inputs(1)
    return aln, tree


def simulated_case(n_taxa: int, n_sites: int, seed: int):
    from phylo.likelihood import simulate_alignment
    from phylo.trees.random import random_tree
    tree = random_tree(n_taxa, seed=seed, branch_length_rate=20.0)
    aln = simulate_alignment(tree, GTR_G4, n_sites, seed=seed + 1)
    return aln, tree


CASE_KEYS = ("ds1-jc", "ds1-gtr", "large-gtr")


def cases(quick: bool, keys=CASE_KEYS):
    """(label, (alignment, tree), model) of the selected cases (``CASE_KEYS``)."""
    if quick:
        small = simulated_case(6, 32, 1)
        large = simulated_case(10, 48, 2)
        chosen = [("tiny JC69 (DS1 stand-in)", small, "JC"),
                  ("tiny GTR+G4 (DS1 stand-in)", small, GTR_G4),
                  ("tiny GTR+G4 (500-taxon stand-in)", large, GTR_G4)]
        return [c for k, c in zip(CASE_KEYS, chosen) if k in keys]
    out = []
    if "ds1-jc" in keys or "ds1-gtr" in keys:
        ds1 = ds1_case()
        out += [("DS1 JC69", ds1, "JC")] if "ds1-jc" in keys else []
        out += [("DS1 GTR+G4", ds1, GTR_G4)] if "ds1-gtr" in keys else []
    if "large-gtr" in keys:
        out.append(("500 taxa x 20000 sites GTR+G4", simulated_case(500, 20000, 3), GTR_G4))
    return out


def rows_for(tree, n: int, rng) -> np.ndarray:
    base = np.asarray(tree.branch_lengths)
    return np.ascontiguousarray(base * np.exp(0.2 * rng.standard_normal((n, base.size))))


# --- timing ----------------------------------------------------------------------------
def time_calls(fn, seconds: float, min_calls: int = 3) -> list[float]:
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def batch_sizes(max_batch: int, quick: bool) -> list[int]:
    if quick:
        return [b for b in (1, 2, 4) if b <= max_batch]
    sizes, b = [], 1
    while b <= max_batch:
        sizes.append(b)
        b *= 4
    if sizes[-1] != max_batch and max_batch == 32768:
        sizes.append(32768)
    return sizes


def run_case(label, aln, tree, model, args, device_info):
    import numba

    from phylo.likelihood import TreeLikelihood
    from phylo.likelihood.cuda import CudaLikelihood, flops_per_evaluation

    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    cpu = TreeLikelihood(aln, tree, model)
    state = CudaLikelihood.for_engine(cpu)
    first = rows_for(tree, 2, rng)
    gpu_first = state.log_likelihood_batch(first)      # compiles the kernels
    setup_s = time.perf_counter() - t0
    cpu_first = cpu.log_likelihood_batch(first)
    diff = float(np.max(np.abs(gpu_first - cpu_first)))
    assert diff < AGREEMENT_TOL, f"{label}: GPU and CPU disagree by {diff}"
    out = {"case": label, "model": model, "n_taxa": aln.n_taxa, "n_sites": aln.n_sites,
           "n_patterns": aln.n_patterns, "n_slots": state.n_slots,
           "matrices_in_shared_memory": state._shared, "setup_and_compile_s": setup_s,
           "max_abs_lnl_diff_gpu_cpu": diff, "gpu": [], "cpu": [], "gradient": []}
    flops = flops_per_evaluation(aln.n_taxa, aln.n_patterns, int(cpu.data.model[0]))
    peak = device_info.get("fp64_peak")
    stop_gpu = stop_cpu = False
    for b in batch_sizes(args.max_batch, args.quick):
        rows = rows_for(tree, b, rng)
        if not stop_gpu:
            times = time_calls(lambda: state.log_likelihood_batch(rows), args.seconds)
            med = statistics.median(times)
            rate = b / med
            out["gpu"].append({"batch": b, "calls": len(times), "median_call_s": med,
                               "evals_per_s": rate,
                               "fraction_of_fp64_peak": rate * flops / peak if peak else None})
            stop_gpu = med > args.max_call_seconds
        if not stop_cpu:
            times = time_calls(lambda: cpu.log_likelihood_batch(rows), args.seconds, min_calls=1)
            med = statistics.median(times)
            out["cpu"].append({"batch": b, "calls": len(times), "median_call_s": med,
                               "evals_per_s": b / med, "threads": numba.get_num_threads()})
            stop_cpu = med > args.max_call_seconds
    # gradient cost: B = 1 and the largest batch that fits the time limit
    for b in ([1, 2] if args.quick else [1, 64, 1024]):
        rows = rows_for(tree, b, rng)
        g = statistics.median(time_calls(lambda: state.gradient_batch(rows), args.seconds))
        lk = statistics.median(time_calls(lambda: state.log_likelihood_batch(rows), args.seconds))
        out["gradient"].append({"batch": b, "median_call_s": g, "likelihood_call_s": lk,
                                "cost_in_likelihoods": g / lk})
        if g > args.max_call_seconds:
            break
    gpu_rate = {r["batch"]: r["evals_per_s"] for r in out["gpu"]}
    cross = [r["batch"] for r in out["cpu"] if gpu_rate.get(r["batch"], 0) > r["evals_per_s"]]
    out["crossover_batch"] = min(cross) if cross else None
    out["best_gpu_evals_per_s"] = max(gpu_rate.values())
    out["best_cpu_evals_per_s"] = max(r["evals_per_s"] for r in out["cpu"])
    return out


def device_description() -> dict:
    from phylo.likelihood.cuda import require_cuda, simulated
    require_cuda()
    if simulated():
        return {"name": "numba CUDA simulator", "simulator": True, "fp64_peak": None}
    from numba import cuda
    name = cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else str(name)
    peak = next((v for k, v in FP64_PEAK.items() if k in name), None)
    return {"name": name, "simulator": False, "fp64_peak": peak}


def markdown(result: dict) -> str:
    lines = [f"# GPU likelihood benchmark ({result['label']})", "",
             f"Device: {result['device']['name']}; CPU: {result['environment']['cpu_count']} "
             f"cores, {result['environment']['numba_threads']} Numba threads.", ""]
    if result["device"]["simulator"]:
        lines += ["**Simulator run: these are not speed measurements** (numba's CUDA "
                  "simulator runs every GPU thread as a Python thread); they only show that "
                  "the benchmark runs end to end and that GPU and CPU agree.", ""]
    for case in result["cases"]:
        lines += [f"## {case['case']}", "",
                  f"{case['n_taxa']} taxa, {case['n_patterns']} patterns, {case['n_slots']} "
                  f"live partial slots per thread, matrices in shared memory: "
                  f"{case['matrices_in_shared_memory']}; |lnL GPU − CPU| = "
                  f"{case['max_abs_lnl_diff_gpu_cpu']:.2e}; crossover batch: "
                  f"{case['crossover_batch']}", "",
                  "| batch | GPU evals/s | CPU evals/s | GPU / CPU |", "|---|---|---|---|"]
        cpu = {r["batch"]: r["evals_per_s"] for r in case["cpu"]}
        for r in case["gpu"]:
            c = cpu.get(r["batch"])
            c_text = "" if c is None else f"{c:.4g}"
            ratio = "" if c is None else f"{r['evals_per_s'] / c:.3g}"
            lines.append(f"| {r['batch']} | {r['evals_per_s']:.4g} | {c_text} | {ratio} |")
        lines += ["", "| gradient batch | cost in likelihood evaluations |", "|---|---|"]
        lines += [f"| {g['batch']} | {g['cost_in_likelihoods']:.3g} |" for g in case["gradient"]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny cases for the CUDA simulator (not a speed measurement)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--seconds", type=float, default=None, help="timing per configuration")
    p.add_argument("--max-batch", type=int, default=32768)
    p.add_argument("--cases", nargs="+", choices=CASE_KEYS, default=list(CASE_KEYS))
    p.add_argument("--max-call-seconds", type=float, default=None,
                   help="stop growing the batch once a call takes longer")
    args = p.parse_args(argv)
    if args.quick:
        # the simulator unless the caller chose otherwise (NUMBA_ENABLE_CUDASIM=0 on a GPU)
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    if args.seconds is None:
        args.seconds = 0.0 if args.quick else 0.5
    if args.max_call_seconds is None:
        args.max_call_seconds = 60.0 if args.quick else 3.0
    import numba
    device = device_description()
    label = "simulator (not a speed measurement)" if device["simulator"] else device["name"]
    result = {"benchmark": "gpu", "label": label, "quick": args.quick, "device": device,
              "targets_on_h200": TARGETS,
              "environment": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                              "numba_threads": numba.get_num_threads(),
                              "numba": numba.__version__, "numpy": np.__version__,
                              "loadavg_start": os.getloadavg()},
              "cases": []}
    t0 = time.perf_counter()
    for label_c, (aln, tree), model in cases(args.quick, args.cases):
        print(f"{label_c} ...", file=sys.stderr, flush=True)
        result["cases"].append(run_case(label_c, aln, tree, model, args, device))
    result["environment"]["loadavg_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = ("gpu_quick_simulator" if args.quick else "gpu_simulator") if device["simulator"] \
        else "gpu"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(f"wrote {out / (stem + '.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
