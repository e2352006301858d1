"""Scale-out of the comparison workflow: serial vs 2 local processes vs a Dask LocalCluster.

The grid of Fourment et al. (2020, "19 dubious ways") on DS1, made small enough for a
few minutes: the most probable topologies of
../shared/data/DS1/JC_no_gamma_credible_set_ds1 × a few fast estimators × repeats,
one task per (topology, estimator, repeat), run by
:func:`phylo.marginal.compare_candidates` three ways:

- ``serial``: in this process, one Numba thread (what one worker does);
- ``local``: :class:`phylo.marginal.executors.LocalProcessPool` with ``--workers``
  processes, one thread each;
- ``dask``: ``distributed.LocalCluster(n_workers=--workers, threads_per_worker=1,
  processes=True, host="127.0.0.1")`` (skipped when dask is not installed).

Reported per mode: wall time of the grid (pool start-up measured apart), speedup over
serial, the sum of the tasks' own compute seconds, and the overhead per task =
(workers × wall − Σ task seconds) / tasks: worker time not spent estimating
(serialisation, scheduling, idle tails), per task. Numba's cache is warmed once in
this process before any pool starts (and its time reported). The rows of every mode
must equal the serial rows bit for bit (checked; the script fails otherwise). The
machine's load average is recorded before and after: on a shared machine the
speedup is bounded by the cores actually free.

Peer in the same run: the same pool running equally many CPU-bound tasks that carry
no data and call no library (a pure-Python loop, :func:`burn`), serial vs pool; its
speedup is what the machine offered at that moment, and ``efficiency`` = our speedup /
the peer's. BLAS/OpenMP pools are held to one thread (environment set before NumPy
loads, inherited by the workers), so the serial baseline is single-threaded too.

Writes benchmarks/results/scale_out.json and scale_out.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")        # before NumPy loads; workers inherit it

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))

from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.newick import parse_newick  # noqa: E402
from phylo.marginal import CandidateSpec, compare_candidates, get_estimator  # noqa: E402
from phylo.marginal.executors import LocalProcessPool, warm_numba_cache  # noqa: E402

#: Fast estimators of the 19, with settings that make one task 0.5-2 s on DS1 (one thread).
ESTIMATORS = {
    "stepping-stone": {"n_steps": 10, "samples_per_step": 300, "burnin": 20, "thin": 30},
    "gamma-laplus": {},
    "harmonic-mean": {"n_samples": 1000, "burnin": 50, "thin": 60},
    "naive-monte-carlo": {"n_samples": 20000},
}


def read_credible_set(path: Path) -> list[tuple[float, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            p, nwk = line.split("\t", 1)
            out.append((float(p), nwk.strip()))
    return out


#: Iterations of the peer task (about the CPU time of one of our tasks on an idle core).
BURN_ITERATIONS = 10_000_000


def burn(n: int) -> float:
    """The peer task: a pure-Python loop, no data in or out; its wall seconds."""
    start = time.perf_counter()
    x = 0
    for i in range(n):
        x += i & 7
    return time.perf_counter() - start


def peer_speedup(pool, n_tasks: int) -> dict:
    """Serial vs ``pool`` on ``n_tasks`` peer tasks: what the machine offers right now."""
    start = time.perf_counter()
    for _ in range(n_tasks):
        burn(BURN_ITERATIONS)
    serial = time.perf_counter() - start
    start = time.perf_counter()
    list(pool.map(burn, [BURN_ITERATIONS] * n_tasks))
    parallel = time.perf_counter() - start
    return {"tasks": n_tasks, "serial_s": round(serial, 3), "pool_s": round(parallel, 3),
            "speedup": round(serial / parallel, 3)}


def run_grid(alignment, candidates, estimators, *, seed, repeats, executor=None):
    """Every estimator on every candidate; rows in a fixed order, and the wall time."""
    rows = []
    start = time.perf_counter()
    for est in estimators:
        result = compare_candidates(alignment, candidates, est, seed=seed, repeats=repeats,
                                    executor=executor, threads_per_task=1)
        rows.extend(result.rows)
    return rows, time.perf_counter() - start


def summarise(name, rows, wall, workers, serial_wall, startup):
    task_seconds = sum(r["seconds"] for r in rows)
    n = len(rows)
    return {"mode": name, "workers": workers, "tasks": n, "wall_s": round(wall, 3),
            "startup_s": None if startup is None else round(startup, 3),
            "task_seconds_sum": round(task_seconds, 3),
            "speedup_vs_serial": None if serial_wall is None else round(serial_wall / wall, 3),
            "overhead_per_task_s": round((workers * wall - task_seconds) / n, 4)}


def numbers(rows):
    """Rows without wall-clock times, as JSON text (so that NaN equals NaN)."""
    return [json.dumps({k: v for k, v in r.items() if k not in ("seconds", "compile_seconds")})
            for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topologies", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()

    d = SHARED / "data" / "DS1"
    if not d.is_dir():
        print(f"../shared/data/DS1 not found at {d}; set PHYLO_SHARED", file=sys.stderr)
        return 2
    import numba
    numba.set_num_threads(1)
    aln = read_alignment(d / "DS1.fasta")
    cs = read_credible_set(d / "JC_no_gamma_credible_set_ds1")[: args.topologies]
    candidates = [CandidateSpec.from_tree("JC", parse_newick(nwk, taxa=aln.taxa),
                                          name=f"JC on DS1-T{i + 1}",
                                          source="JC_no_gamma_credible_set_ds1")
                  for i, (_, nwk) in enumerate(cs)]
    estimators = [get_estimator(name, **ESTIMATORS.get(name, {})) for name in args.estimators]
    load_before = os.getloadavg()
    warm = sum(warm_numba_cache(aln, candidates[:1], est) for est in estimators)
    print(f"warm-up (Numba cache) {warm:.1f} s; load average {load_before}", flush=True)

    modes = []
    serial_rows, serial_wall = run_grid(aln, candidates, estimators, seed=args.seed,
                                        repeats=args.repeats)
    modes.append(summarise("serial", serial_rows, serial_wall, 1, None, None))
    print(modes[-1], flush=True)

    t0 = time.perf_counter()
    with LocalProcessPool(args.workers, threads_per_worker=1) as pool:
        list(pool.map(abs, range(args.workers)))          # processes up
        startup = time.perf_counter() - t0
        peer_before = peer_speedup(pool, 2 * args.workers)
        rows, wall = run_grid(aln, candidates, estimators, seed=args.seed,
                              repeats=args.repeats, executor=pool)
        peer_after = peer_speedup(pool, 2 * args.workers)
    peer = round((peer_before["speedup"] + peer_after["speedup"]) / 2, 3)
    identical = {"local": numbers(rows) == numbers(serial_rows)}
    modes.append(summarise(f"local:{args.workers}", rows, wall, args.workers, serial_wall,
                           startup))
    modes[-1]["efficiency_vs_peer"] = round(modes[-1]["speedup_vs_serial"] / peer, 3)
    print(modes[-1], flush=True)

    if not args.no_dask:
        try:
            import distributed
        except ImportError:
            print("dask.distributed not installed: Dask mode skipped", flush=True)
        else:
            t0 = time.perf_counter()
            with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                          processes=True, host="127.0.0.1",
                                          dashboard_address=None,
                                          silence_logs=logging.ERROR) as cluster, \
                    distributed.Client(cluster) as client:
                client.wait_for_workers(args.workers)
                startup = time.perf_counter() - t0
                rows, wall = run_grid(aln, candidates, estimators, seed=args.seed,
                                      repeats=args.repeats, executor=client)
            identical["dask"] = numbers(rows) == numbers(serial_rows)
            modes.append(summarise(f"dask LocalCluster ({args.workers} workers)", rows, wall,
                                   args.workers, serial_wall, startup))
            modes[-1]["efficiency_vs_peer"] = round(modes[-1]["speedup_vs_serial"] / peer, 3)
            print(modes[-1], flush=True)
    load_after = os.getloadavg()

    result = {
        "benchmark": "scale_out", "data": "DS1 (27 taxa)",
        "grid": {"topologies": len(candidates), "estimators": {e.name: e.settings()
                                                              for e in estimators},
                 "repeats": args.repeats, "tasks": len(serial_rows), "seed": args.seed},
        "machine": {"cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": load_after,
                    "note": "shared machine: other jobs ran at the same time"},
        "numba_warmup_s": round(warm, 2),
        "peer": {"what": "pure-Python CPU-bound tasks without data, serial vs the local pool",
                 "before": peer_before, "after": peer_after, "mean_speedup": peer},
        "bit_identical_to_serial": identical,
        "modes": modes,
        "target": "speedup >= 1.8 with 2 workers on 2 free cores",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_out.json").write_text(json.dumps(result, indent=1) + "\n")
    md = ["# Scale-out of phylo compare on DS1", "",
          f"{len(serial_rows)} tasks: {len(candidates)} topologies × "
          f"{len(estimators)} estimators ({', '.join(e.name for e in estimators)}) × "
          f"{args.repeats} repeats; {os.cpu_count()} cores, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (shared machine).", "",
          f"Peer (data-free CPU-bound tasks on the same pool): speedup {peer_before['speedup']}"
          f" before, {peer_after['speedup']} after the grid — what the machine offered.", "",
          "| mode | workers | wall (s) | start-up (s) | Σ task s | speedup | vs peer | "
          "overhead/task (s) |",
          "|---|---|---|---|---|---|---|---|"]
    for m in modes:
        md.append(f"| {m['mode']} | {m['workers']} | {m['wall_s']} | {m['startup_s'] or '-'} | "
                  f"{m['task_seconds_sum']} | {m['speedup_vs_serial'] or '-'} | "
                  f"{m.get('efficiency_vs_peer', '-')} | {m['overhead_per_task_s']} |")
    md += ["", f"Rows bit-identical to serial: {identical}. Numba warm-up {warm:.1f} s "
           "(once, in the client, before any worker starts)."]
    (args.out / "scale_out.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    if not all(identical.values()):
        print("ERROR: a parallel mode did not reproduce the serial rows", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
