"""Marginal likelihood over tree space on DS1–DS8 against the published table, and
MrBayes' own stepping stone over tree space on DS1 as the speed peer.

For each data set with short runs in ../shared/data/DSk/short_run (MrBayes ``.trprobs``
summaries of ordinary-length JC69 runs; DS5 has none, DS6 one), the posterior-odds
estimator of :func:`phylo.marginal.tree_space_marginal` (defaults: Gamma-Laplus IS on
each of the most frequent topologies until 95 % of the posterior or 40 topologies)
is run on two short runs (rep_1, rep_2; DS8 all ten; between-run errors). DS5 and DS6
have diffuse posteriors and use SBN importance sampling (``--is-draws``, 1000); DS5's
sample is a seeded MrBayes run this benchmark makes when ``mb`` is on PATH
(:data:`MB_SAMPLE_RUNS`, cached under ``~/.cache/phylo/bench`` or $PHYLO_BENCH_CACHE),
checked by the ASDSF of its two runs and cross-checked by the odds identity on the golden
run's most probable topologies (19-dubious credible set). :data:`VARIANTS` adds second
estimates beside a row. The results are compared with the
MrBayes stepping-stone and VBPI values quoted in
../shared/reference/published/vbpi_family_mll (JC69, Exp(10), uniform topologies).
The "VBPI-family consensus" is the mean of VBPI, VBPI-GNN and SBN there.
Wall time is measured after the sample is read (the issue's target: DS1 ≤ 60 s on two
cores, error ≤ 0.3 nats); this machine is shared with other jobs, so times are upper
bounds.

MrBayes peer: an ``ss`` with topology moves on DS1 (``--mb-ngen`` generations over
``--mb-steps`` steps, 2 runs × 1 chain; by default 10⁶ generations, several times our
DS1 estimate's CPU time, and the report gives the ratio) is timed in the same run, and its CPU time per generation is
extrapolated to the settings of the fixed-topology reference in
../shared/reference/primates/mrbayes_ss (50 steps, 5.1 × 10⁶ generations, 2 runs),
which is what an SE of ~0.1–0.2 nats over tree space needs at least (stated).

Writes tree_space.json and tree_space.md to benchmarks/results/ (or --out); ``--only
DS1`` re-runs one data set and replaces its row (``--no-mrbayes`` keeps the stored peer).
"""
from __future__ import annotations

import os

# One BLAS thread: the per-topology MAP fit (scipy L-BFGS-B) calls OpenBLAS on ~100
# variables, where extra threads only spin; measured on DS6 under load, the Gamma-Laplus
# fit took 0.8 s per topology with the default threads and 0.07 s with one (the whole
# per-topology IS 0.55-0.70 -> 0.26-0.28 s CPU). Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))

from phylo.errors import PhyloError  # noqa: E402
from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.marginal.tree_space import read_tree_sample, tree_space_marginal  # noqa: E402

DATASETS = ("DS1", "DS2", "DS3", "DS4", "DS5", "DS6", "DS7", "DS8")
#: Issue 10 tolerances: DS1 within 0.3 nats of -7108.42; the others within 0.5 of the
#: VBPI-family consensus.
DS1_TOL = 0.3
OTHER_TOL = 0.5
#: Extrapolation target for MrBayes (primates fixed-topology reference settings).
MB_REF_STEPS = 50
MB_REF_NGEN = 5_100_000
MB_REF_RUNS = 2


def published() -> dict[str, dict[str, tuple[float, float]]]:
    path = SHARED / "reference" / "published" / "vbpi_family_mll" / \
        "mll_DS1-8_as_quoted_in_PhyloGen_NeurIPS2024_Table1.csv"
    out: dict[str, dict[str, tuple[float, float]]] = {}
    with open(path) as fh:
        for row in csv.DictReader(fh):
            try:
                out.setdefault(row["dataset"], {})[row["method"]] = (float(row["mll"]), float(row["sd"]))
            except ValueError:
                continue
    return out


#: Short-run replicates used per data set when --reps is not given: rep_1 + rep_2, but
#: all ten for DS8, where the best 40 topologies of two runs held only 51 % of the
#: posterior (between-run error over all ten).
DATASET_REPS = {"DS8": list(range(1, 11))}
#: Data sets estimated by SBN importance sampling from the start (diffuse posteriors).
SBN_IS_DATASETS = {"DS5", "DS6"}
#: Second estimates reported beside a data set's row (same seed):
#: ("sample", what) — where the sample comes from: "reps:1,2" (short runs) or
#: "golden:K" (the golden run's K most probable topologies of the 19-dubious credible
#: set with their golden-run probabilities; 10 × 750,001 draws); plus keyword
#: arguments of tree_space_marginal.
VARIANTS = {
    "DS5": [("golden:50", {"max_topologies": 50, "target_mass": 1.0}),
            ("golden:200", {"max_topologies": 200, "target_mass": 1.0})],
    "DS8": [("reps:1,2", {}),
            ("reps:1-10", {"max_topologies": 150}),
            ("reps:1-10", {"posterior": "sbn"})],
}
#: Draws behind the golden-run probabilities (10 replicates × 750,001 samples,
#: ../shared/data/README.md).
GOLDEN_DRAWS = 10 * 750_001


def short_runs(name: str, reps: list[int]) -> list[Path]:
    folder = SHARED / "data" / name
    runs = [folder / "short_run" / f"rep_{r}" / f"{name}.trprobs.gz" for r in reps]
    runs = [p for p in runs if p.exists()]
    if not runs:
        runs = sorted((folder / "short_run").glob("rep_*/*.trprobs.gz"))[:len(reps)]
    return runs


def _estimate(aln, tss, seed: int, method: str, is_draws: int, **kw) -> dict:
    """One tree_space_marginal call, timed (wall and process CPU, all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out: dict = {}
    if method == "odds":
        try:
            res = tree_space_marginal(aln, tss, "JC", seed=seed, **kw)
        except PhyloError as exc:
            # a diffuse posterior: the SBN importance sampler (what the refusal advises)
            out["odds_refused"] = str(exc)
            method = "sbn-is"
    if method == "sbn-is":
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            res = tree_space_marginal(aln, tss, "JC", seed=seed, method="sbn-is",
                                      n_draws=is_draws, **kw)
        except PhyloError as exc:
            out.update({"status": f"refused: {exc}", "seconds": round(time.perf_counter() - t0, 2)})
            return out
    d = res.diagnostics
    out.update({"status": "ok", "log_z": res.log_marginal_likelihood, "std_error": res.std_error,
                "seconds": round(time.perf_counter() - t0, 2),
                "cpu_seconds": round(time.process_time() - c0, 2),
                "n_topologies": d["n_topologies"],
                "method": d["method"], "posterior_mass": d.get("posterior_mass"),
                "posterior_mass_se": d.get("posterior_mass_se"),
                "posterior_source": d.get("posterior_source"),
                "implied_spread": d.get("implied_spread"),
                "implied_weighted_sd": d.get("implied_weighted_sd"), "ess": d.get("ess"),
                "pareto_k": d.get("pareto_k"), "n_draws": d.get("n_draws"),
                "std_error_parts": d.get("std_error_parts"), "warnings": d["warnings"],
                "likelihood_evaluations": res.likelihood_evaluations,
                # what carried the estimate (the largest shares; Newick omitted)
                "top_topologies": [{k: getattr(t, k) for k in ("share", "log_z", "log_z_se",
                                                              "posterior", "log_q", "draws")}
                                   for t in sorted(res.per_topology, key=lambda t: -t.share)[:TOP_ROWS]]})
    return out


#: Topologies (largest shares) kept per row in the JSON.
TOP_ROWS = 10
#: Topologies whose inner Gamma-Laplus IS weights are checked for a heavy tail (SBN-IS
#: data sets): the 4 most frequent and 8 drawn (seeded) from the 2000 most frequent.
INNER_CHECK_TOP, INNER_CHECK_RANDOM = 4, 8


def inner_tail_check(aln, tss, seed: int, n_samples: int = 10_000) -> dict:
    """Pareto k̂ and ESS of the Gamma-Laplus IS weights (the default inner estimator,
    10⁴ draws) on a few of the sample's topologies: whether each log Z_tau is itself
    reliable (k̂ < 0.7), which the outer SBN-IS diagnostics do not separate."""
    import numpy as np
    from phylo.marginal import get_estimator
    from phylo.marginal.problem import Problem
    order = np.argsort(-tss.frequencies(), kind="stable")
    rng = np.random.default_rng(seed)
    pool = order[INNER_CHECK_TOP:2000]
    picks = list(order[:INNER_CHECK_TOP]) + list(rng.choice(pool, min(INNER_CHECK_RANDOM, pool.size),
                                                            replace=False))
    # the shipped estimator, whose diagnostics carry its weights' k̂ and ESS
    estimator = get_estimator("gamma-laplus-is", n_samples=n_samples)
    out = []
    for u in picks:
        tree = tss.pooled.tree(int(u)).with_taxa_order(aln.taxa)
        problem = Problem(aln, tree, "JC", branch_prior_rate=10.0)
        d = estimator.run(problem, seed=int(np.random.SeedSequence([seed, int(u)]).generate_state(1)[0])).diagnostics
        out.append({"rank": int(np.flatnonzero(order == u)[0]), "pareto_k": float(d["pareto_k"]),
                    "ess": float(d["importance_ess"]),
                    "map_branches_at_zero": d.get("branches_at_zero")})
    ks = [o["pareto_k"] for o in out]
    return {"n_samples": n_samples, "topologies": out, "median_pareto_k": float(np.median(ks)),
            "n_above_0.7": int(sum(k > 0.7 for k in ks))}


def _reps_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def run_variant(name: str, aln, what: str, kw: dict, seed: int, is_draws: int) -> dict:
    kind, arg = what.split(":")
    t0 = time.perf_counter()
    if kind == "golden":
        from phylo.marginal.tree_space import read_topology_probabilities
        path = SHARED / "data" / name / f"JC_no_gamma_credible_set_{name.lower()}"
        tss = read_topology_probabilities(path, n_draws=GOLDEN_DRAWS, taxa=aln.taxa)
        source = f"golden run: {path.relative_to(SHARED)} ({tss.pooled.n_topologies} topologies)"
    else:
        runs = short_runs(name, _reps_of(arg))
        tss = read_tree_sample([str(p) for p in runs], taxa=aln.taxa)
        source = f"short runs rep_{arg}"
    row = {"variant": what, "source": source, "settings": kw,
           "read_seconds": round(time.perf_counter() - t0, 2)}
    row.update(_estimate(aln, tss, seed, "odds", is_draws, **kw))
    return row


def run_dataset(name: str, reps: list[int] | None, seed: int, is_draws: int,
                variants: bool = True) -> dict:
    folder = SHARED / "data" / name
    reps = reps or DATASET_REPS.get(name, [1, 2])
    runs = short_runs(name, reps)
    aln = read_alignment(folder / f"{name}.fasta")
    row: dict = {"dataset": name, "n_taxa": aln.n_taxa,
                 "load_average_1min": round(os.getloadavg()[0], 1)}
    mb = None
    if not runs and name in MB_SAMPLE_RUNS:
        print(f"{name}: MrBayes sample (cached in {MB_CACHE}) ...", file=sys.stderr, flush=True)
        mb = mrbayes_sample(name, seed)
        if mb["status"] != "ok":
            row["status"] = mb["status"]
            return row
        runs = [Path(p) for p in mb["runs"]]
    if not runs:
        row["status"] = "no short run in ../shared/data (needs a MrBayes run)"
        return row
    t0 = time.perf_counter()
    tss = read_tree_sample([str(p) for p in runs], taxa=aln.taxa)
    read_s = time.perf_counter() - t0
    row.update({"runs": [str(p.relative_to(SHARED)) if SHARED in p.parents else str(p) for p in runs],
                "read_seconds": round(read_s, 2), "sample_topologies": tss.pooled.n_topologies,
                "sample_draws": tss.n_draws})
    if mb is not None:
        from phylo.diagnostics import asdsf
        conv = asdsf([str(p) for p in runs], burnin=0.25)
        row["mrbayes_sample"] = {**mb["stamp"], "reused": mb["reused"], "burnin": 0.25,
                                 "asdsf": conv.asdsf, "max_sdsf": conv.max_sdsf,
                                 "asdsf_splits": conv.n_splits}
    method = "sbn-is" if name in SBN_IS_DATASETS else "odds"
    row.update(_estimate(aln, tss, seed, method, is_draws))
    if method == "sbn-is":
        row["inner_tail_check"] = inner_tail_check(aln, tss, seed)
    if variants and name in VARIANTS:
        row["variants"] = []
        for what, kw in VARIANTS[name]:
            print(f"{name} variant {what} {kw} ...", file=sys.stderr, flush=True)
            row["variants"].append(run_variant(name, aln, what, kw, seed, is_draws))
    return row
    d = res.diagnostics
    row.update({"status": "ok", "log_z": res.log_marginal_likelihood, "std_error": res.std_error,
                "seconds": round(time.perf_counter() - t0, 2),
                "cpu_seconds": round(time.process_time() - c0, 2), "n_topologies": d["n_topologies"],
                "method": d["method"], "posterior_mass": d.get("posterior_mass"),
                "posterior_mass_se": d.get("posterior_mass_se"),
                "implied_spread": d.get("implied_spread"), "ess": d.get("ess"),
                "pareto_k": d.get("pareto_k"), "warnings": d["warnings"],
                "likelihood_evaluations": res.likelihood_evaluations})
    return row


def mrbayes_nexus(fasta: Path, seed: int, command: str) -> str:
    """A MrBayes command file: the alignment of ``fasta`` and the published model of the
    DS1–DS8 tables (JC69: nst=1, equal rates, fixed equal frequencies; i.i.d. Exp(10)
    unconstrained branch lengths; uniform unrooted topologies), then ``command``."""
    from Bio import SeqIO
    recs = list(SeqIO.parse(str(fasta), "fasta"))
    lines = ["#NEXUS", "begin data;", f"  dimensions ntax={len(recs)} nchar={len(recs[0].seq)};",
             "  format datatype=dna missing=? gap=-;", "  matrix"]
    lines += [f"  {r.id}  {r.seq}" for r in recs]
    lines += ["  ;", "end;", "begin mrbayes;",
              f"  set autoclose=yes nowarn=yes seed={seed} swapseed={seed};",
              "  lset nst=1 rates=equal;",
              "  prset statefreqpr=fixed(equal) brlenspr=unconstrained:exp(10.0) topologypr=uniform;",
              f"  {command}", "end;"]
    return "\n".join(lines) + "\n"


#: Our own MrBayes runs for data sets without a stored short run (the issue: "DS5/DS6
#: need a MrBayes run you make"). DS5 (50 taxa, 378 sites) has a diffuse posterior (the
#: golden run's top 1000 topologies hold 25 %): 2 runs × 2 chains (one heated, MrBayes'
#: default temperature) of 6·10⁶ generations, one tree per 300, i.e. 2 × 15,000 trees
#: after 25 % burn-in; about 6.5 min of one core (16 µs per chain-generation, measured
#: on a 2·10⁵-generation run).
MB_SAMPLE_RUNS = {"DS5": {"ngen": 6_000_000, "samplefreq": 300, "nruns": 2, "nchains": 2}}
#: Where those runs are kept (outside the repository; reused when complete).
MB_CACHE = Path(os.environ.get("PHYLO_BENCH_CACHE",
                               Path.home() / ".cache" / "phylo" / "bench"))


def mrbayes_sample(name: str, seed: int, *, cache: Path = MB_CACHE,
                   settings: dict | None = None) -> dict:
    """Run (or reuse) a seeded MrBayes MCMC of ``name`` under the published model into
    ``cache/<name>-seed<seed>-<ngen>`` and return {"status", "runs" (the .t files),
    "stamp" (settings, CPU and wall seconds, MrBayes' final ASDSF)}. A run is reused
    only when its stamp file (written last) matches the settings."""
    st = dict(settings or MB_SAMPLE_RUNS[name])
    folder = Path(cache) / f"{name.lower()}-seed{seed}-{st['ngen']}"
    stamp_path = folder / "stamp.json"
    runs = [folder / f"{name.lower()}.run{r}.t" for r in range(1, st["nruns"] + 1)]
    if stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("settings") == st and stamp.get("seed") == seed and all(p.exists() for p in runs):
            return {"status": "ok", "runs": [str(p) for p in runs], "stamp": stamp, "reused": True}
    mb = shutil.which("mb")
    if mb is None:
        return {"status": f"mb (MrBayes) not installed: cannot make the {name} sample"}
    folder.mkdir(parents=True, exist_ok=True)
    nex = folder / f"{name.lower()}.nex"
    nex.write_text(mrbayes_nexus(
        SHARED / "data" / name / f"{name}.fasta", seed,
        f"mcmc ngen={st['ngen']} samplefreq={st['samplefreq']} printfreq={st['ngen'] // 20} "
        f"nruns={st['nruns']} nchains={st['nchains']} diagnfreq={st['ngen'] // 10} "
        f"filename={name.lower()};"))
    t0 = time.perf_counter()
    with open(folder / "mb.log", "w") as log:
        proc = subprocess.run([mb, nex.name], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    text = (folder / "mb.log").read_text()
    cpu = re.search(r"Analysis used\s+([\d.]+)\s+seconds of CPU time", text)
    asdsf = re.findall(r"Average standard deviation of split frequencies:\s+([\d.]+)", text)
    if proc.returncode != 0 or cpu is None or not all(p.exists() for p in runs):
        return {"status": f"MrBayes failed on {name} (exit {proc.returncode}; see {folder / 'mb.log'})"}
    stamp = {"settings": st, "seed": seed, "cpu_seconds": float(cpu.group(1)),
             "wall_seconds": round(wall, 1), "mrbayes_final_asdsf": float(asdsf[-1]) if asdsf else None,
             "folder": str(folder)}
    stamp_path.write_text(json.dumps(stamp, indent=1) + "\n")
    return {"status": "ok", "runs": [str(p) for p in runs], "stamp": stamp, "reused": False}


def mrbayes_peer(ngen: int, steps: int, seed: int) -> dict:
    mb = shutil.which("mb")
    if mb is None:
        return {"status": "mb (MrBayes) not installed"}
    work = Path(tempfile.mkdtemp(prefix="mb_ds1_"))
    (work / "ds1_ss.nex").write_text(mrbayes_nexus(
        SHARED / "data" / "DS1" / "DS1.fasta", seed,
        f"ss ngen={ngen} samplefreq=100 printfreq={max(ngen // 5, 100)} nruns=2 nchains=1 "
        f"mcmcdiagn=no nsteps={steps} alpha=0.4 burninss=-1 filename=ds1_ss;"))
    t0 = time.perf_counter()
    proc = subprocess.run([mb, "ds1_ss.nex"], cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Mean:\s+(-?\d+\.\d+)", proc.stdout)
    runs = re.findall(r"^\s+\d\s+(-?\d+\.\d+)\s*$", proc.stdout, flags=re.M)
    cpu = re.search(r"Analysis used\s+([\d.]+)\s+seconds of CPU time", proc.stdout)
    cpu_s = float(cpu.group(1)) if cpu else wall
    generations = ngen * 2          # 2 runs × 1 chain; ngen counts all steps together
    per_gen = cpu_s / generations
    ref_gens = MB_REF_NGEN * MB_REF_RUNS
    return {"status": "ok" if m else f"no marginal likelihood in the output (exit {proc.returncode})",
            "ngen": ngen, "nsteps": steps, "nruns": 2, "nchains": 1, "seconds": round(wall, 1),
            "cpu_seconds": cpu_s, "load_average_1min": round(os.getloadavg()[0], 1),
            "log_z_mean": float(m.group(1)) if m else None,
            "log_z_runs": [float(x) for x in runs],
            "seconds_per_generation": per_gen,
            "extrapolated_seconds": round(per_gen * ref_gens, 0),
            "extrapolation": f"{MB_REF_STEPS} steps, {MB_REF_NGEN} generations, {MB_REF_RUNS} runs "
                             "(the fixed-topology reference settings in "
                             "shared/reference/primates/mrbayes_ss) at the measured time per "
                             "generation; over tree space a reliable ss needs at least that"}


def _sample_label(r: dict) -> str:
    """Where a row's topology sample came from, in a few words."""
    if r.get("variant"):
        kind, arg = r["variant"].split(":")
        return f"golden top {arg}" if kind == "golden" else f"rep_{arg.replace('-', '–').replace(',', '+')}"
    if r.get("mrbayes_sample"):
        st = r["mrbayes_sample"]["settings"]
        return f"our MrBayes {st['nruns']}×{st['nchains']}ch×{st['ngen'] / 1e6:g}M"
    runs = r.get("runs") or []
    reps = [re.search(r"rep_(\d+)", x) for x in runs]
    reps = [int(m.group(1)) for m in reps if m]
    if len(reps) > 2 and reps == list(range(reps[0], reps[-1] + 1)):
        return f"rep_{reps[0]}–{reps[-1]}"
    return "+".join(f"rep_{k}" for k in reps)


def _table_row(label: str, n_taxa, r: dict, pub: dict, cons) -> str:
    mb, vb = pub.get("MrBayes_SS"), pub.get("VBPI")
    if r.get("status") != "ok":
        return (f"| {label} | {n_taxa or ''} | – | {_sample_label(r)} | – | | | | "
                f"{mb[0] if mb else ''} | {vb[0] if vb else ''} | "
                f"{'' if cons is None else f'{cons:.2f}'} | | | {r.get('status')} | "
                f"{r.get('seconds', '')} | |")
    method = r.get("method", "odds")
    if method == "odds":
        mass = f"{r['posterior_mass']:.3f}"
        if r.get("posterior_source") == "sbn":
            method = "odds, P(S) SBN"
    else:
        mass = f"ESS {r['ess']:.0f} / {r.get('n_draws') or ''}, k̂ {r['pareto_k']:.2f}"
    within = r.get("within_tolerance")
    return (f"| {label} | {n_taxa} | {method} | {_sample_label(r)} | {r['log_z']:.2f} | "
            f"{r['std_error']:.3f} | {r['n_topologies']} | {mass} | {mb[0]:.2f} ({mb[1]}) | "
            f"{vb[0]:.2f} ({vb[1]}) | {cons:.2f} | {r['log_z'] - cons:+.2f} | "
            f"{r['log_z'] - mb[0]:+.2f} | {'' if within is None else ('yes' if within else 'NO')} | "
            f"{r['seconds']} | {r.get('cpu_seconds', '')} |")


def markdown(doc: dict) -> str:
    out = ["# Marginal likelihood over tree space (DS1–DS8)", "",
           f"Machine: {doc['machine']}. Seed {doc['seed']}. Estimators: posterior odds "
           "(Gamma-Laplus IS per topology, S = most frequent topologies up to 95 % mass or 40 "
           "unless stated; between-run error of P(S|D)) and, for the diffuse DS5/DS6, SBN "
           "importance sampling (SBN-EM-α, α = 0.1, proposal fitted to the sample). "
           "Samples: short runs of ../shared/data (rep_1 + rep_2; DS8 all ten), and for DS5 a "
           "MrBayes run made by this benchmark (cached outside the repository). Rows marked ↳ "
           "are second estimates of the same data set. "
           "Published: ../shared/reference/published/vbpi_family_mll (JC69, Exp(10), uniform "
           "topologies); consensus = mean of VBPI, VBPI-GNN, SBN. Times after reading the sample; "
           "wall times on a machine loaded by other jobs (1-min load average per row in the "
           "JSON, 4–10 on 2 cores), so CPU = process CPU time (all threads) is the better "
           "measure (empty for rows from the first run, before CPU time was recorded).",
           "", "| data set | taxa | method | sample | ours | se | topologies | P(S) or ESS / draws, k̂ | "
           "MrBayes SS | VBPI | consensus | ours − consensus | ours − MrBayes | within tol | "
           "wall (s) | CPU (s) |",
           "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in doc["rows"]:
        pub = r.get("published", {})
        cons = r.get("consensus")
        out.append(_table_row(r["dataset"], r.get("n_taxa"), r, pub, cons))
        for v in r.get("variants", []):
            out.append(_table_row(f"↳ {r['dataset']}", r.get("n_taxa"), v, pub, cons))
    m = doc.get("mrbayes", {})
    out += ["", "## MrBayes `ss` over tree space on DS1 (speed peer)", ""]
    if m.get("status") == "ok":
        ours = next((r for r in doc["rows"] if r["dataset"] == "DS1" and r.get("status") == "ok"), {})
        load = m.get("load_average_1min")
        ratio = (m["cpu_seconds"] / ours["cpu_seconds"]) if ours.get("cpu_seconds") else None
        out += [f"MrBayes run: {m['nsteps']} steps, ngen {m['ngen']} (all steps), 2 runs × 1 "
                f"chain: {m['cpu_seconds']} s CPU ({m['seconds']} s wall"
                + (f", load average {load} on 2 cores" if load is not None else "") + "), "
                f"log Z {m['log_z_mean']} (runs {m['log_z_runs']}): "
                f"**{(m['log_z_mean'] or 0) + 7108.42:+.2f} nats** from −7108.42, although the two "
                "runs agree (a bias of too-short steps, which run-to-run spread does not show). "
                f"Ours on DS1: {ours.get('cpu_seconds')} s CPU, "
                f"{(ours.get('log_z') or 0) + 7108.42:+.2f} nats"
                + (f"; MrBayes used {ratio:.1f}× our CPU time and is further off." if ratio else "."),
                "", f"MrBayes CPU time: {m['seconds_per_generation'] * 1e6:.1f} s per 10⁶ generations. "
                f"Extrapolated to {m['extrapolation']}: {m['extrapolated_seconds'] / 60:.1f} min CPU "
                "— a lower bound: the settings behind the published −7108.42 ± 0.18 are not in "
                "our sources, and the run above is still 1.6 nats off."]
    else:
        out.append(f"Not run: {m.get('status')}")
    notes = list(doc["notes"])
    for r in doc["rows"]:
        pub = r.get("published", {})
        if r.get("status") != "ok" or "MrBayes_SS" not in pub or "VBPI" not in pub:
            continue
        mbv, vbv = pub["MrBayes_SS"][0], pub["VBPI"][0]
        if abs(mbv - vbv) >= 0.3:
            closer = "VBPI" if abs(r["log_z"] - vbv) < abs(r["log_z"] - mbv) else "MrBayes"
            notes.append(f"{r['dataset']}: MrBayes SS and VBPI differ by {abs(mbv - vbv):.2f} nats; "
                         f"ours is {abs(r['log_z'] - vbv):.2f} from VBPI and "
                         f"{abs(r['log_z'] - mbv):.2f} from MrBayes: we agree with {closer}.")
    notes.append(
        "Why we side with VBPI where MrBayes SS and VBPI disagree: (1) our estimate rests on "
        "per-topology values checked independently (exact quartet reference; MrBayes' own "
        "fixed-topology SS on primates agrees with our log Z_tau to 0.01 nats, "
        "tests/test_tree_space.py) and on the identity P(tau|D) = p(tau) Z_tau / Z, whose "
        "per-topology implied values agree with each other (implied spread in the JSON); (2) a "
        "stepping stone over tree space is biased low when its steps are short (the "
        "MrBayes run above is 1.6 nats low on DS1 with its two runs agreeing), and the "
        "published MrBayes SDs (0.5-2.4 nats) are large. Our remaining risk is the short runs "
        "themselves: where S holds little mass (DS7 0.64, DS8 0.51), unconverged topology "
        "frequencies would bias P(S|D), which the between-run error only partly captures. "
        "DS8, the case with the least mass, does not move (its note: ten runs instead of "
        "two, 150 topologies holding 0.70, or P(S|D) from an SBN all agree within 0.02 nats), "
        "so we keep it 0.3 nats above the VBPI family, whose importance-sampled lower bounds "
        "are biased low when the variational fit is loose (VBPI SD 0.55 on DS8).")
    out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _est(r: dict) -> str:
    if r.get("status") != "ok":
        return f"not estimated ({r.get('status')})"
    what = (f"P(S|D) {r['posterior_mass']:.3f}" if r.get("method", "odds") == "odds"
            else f"ESS {r['ess']:.0f} of {r.get('n_draws') or '?'}, k̂ {r['pareto_k']:.2f}")
    return f"{r['log_z']:.2f} ± {r['std_error']:.2f} ({r['n_topologies']} topologies, {what})"


def _inner(r: dict) -> str:
    c = r.get("inner_tail_check")
    if not c:
        return ""
    zeros = sorted({t["map_branches_at_zero"] for t in c["topologies"]})
    return (f" Inner estimator check (Gamma-Laplus IS, {c['n_samples']:,} draws, on "
            f"{len(c['topologies'])} of the sample's topologies: the {INNER_CHECK_TOP} most "
            f"frequent and {INNER_CHECK_RANDOM} seeded picks among the 2000 most frequent): median "
            f"Pareto k̂ of its weights {c['median_pareto_k']:.2f}, {c['n_above_0.7']} of "
            f"{len(c['topologies'])} above 0.7; MAP branch lengths at 0 per topology: "
            f"{', '.join(map(str, zeros))}.")


def dataset_notes(rows: list[dict]) -> list[str]:
    """Notes computed from this run's DS5, DS6 and DS8 rows (what a reader needs to judge
    them: how the DS5 sample was made and whether it converged, DS6's importance
    diagnostics, and whether DS8 moves with more runs or another estimate of P(S|D))."""
    notes = []
    by = {r["dataset"]: r for r in rows}
    r = by.get("DS5")
    if r is not None and r.get("mrbayes_sample"):
        m = r["mrbayes_sample"]
        st = m["settings"]
        cons = r.get("consensus")
        golden = [v for v in r.get("variants", []) if v.get("status") == "ok"]
        notes.append(
            f"DS5: no short run is stored, so the benchmark makes one: MrBayes 3.2 (`mb`), the "
            f"published model, {st['nruns']} runs × {st['nchains']} chains × {st['ngen']:,} "
            f"generations, a tree every {st['samplefreq']}, seed {m['seed']}: {m['cpu_seconds']:.0f} s "
            f"CPU ({m['wall_seconds']:.0f} s wall on the machine loaded by other jobs), cached in {m['folder']} "
            f"and reused when present. After 25 % burn-in: {sum(r['sample_draws'])} trees, "
            f"{r['sample_topologies']} distinct topologies; ASDSF between the two runs "
            f"{m['asdsf']:.4f} (max SDSF {m['max_sdsf']:.3f}, {m['asdsf_splits']} splits with "
            f"frequency ≥ 0.1; MrBayes' own final value {m['mrbayes_final_asdsf']}). SBN "
            f"importance sampling from an SBN-EM-α fitted to it: {_est(r)}"
            + (f", {r['log_z'] - cons:+.2f} from the VBPI-family consensus." if r.get("status") == "ok" else ".")
            + (" Independent cross-check (no MCMC of ours): the posterior-odds identity with "
               "S = the K most probable topologies of the golden run (19-dubious credible set, "
               "read with phylo.marginal.read_topology_probabilities, P(S|D) = their summed "
               "golden-run probability, binomial error with 10 × 750,001 draws assumed as for "
               "DS1–DS4): " + "; ".join(f"K = {v['n_topologies']}: {_est(v)}, "
                                        f"{v['log_z'] - cons:+.2f}" for v in golden) + "."
               if golden else "") + _inner(r)
            + (" The golden-set estimates carry one outlier: the 9th topology's Gamma-Laplus IS "
               "value (seed derived from seed 1) is 2 nats high with a standard error of 0.87 "
               "(a rare large weight; 10⁵ draws give 2.0 nats lower, ± 0.014, measured "
               "separately), which raises K = 50 by ~0.15 nats and K = 200 by less and sets "
               "off the 'implied values disagree' warning; the other 49 implied values of K = 50 "
               "lie between -8214.49 and -8214.13 (median -8214.39), where the SBN-IS "
               "estimate lies."
               if golden else ""))
    r = by.get("DS6")
    if r is not None and r.get("status") == "ok":
        notes.append(
            f"DS6: one short run ({r['sample_topologies']} topologies); the odds method refuses it "
            "(its best topologies hold ~1 % of the posterior), so SBN importance sampling "
            f"(SBN-EM-α, α = 0.1): {_est(r)}. Before: 100 draws gave -6724.23 ± 0.07, ESS 69, "
            "k̂ 0.68 (first run of this benchmark)." + _inner(r)
            + " Measured separately on the most frequent topology, 12 seeds of 10⁴ draws: the "
              "earlier Gamma-Laplus proposal (exponentials for the branches whose MAP is 0) "
              "scattered by 0.50 nats (median k̂ 5.8; 10⁵ draws: -6560.27 ± 0.13); the "
              "defensive mixture with truncated normals at those branches (the shipped "
              "gamma-laplus-is) scatters by 0.13 nats around -6560.23 (median k̂ 0.76). "
              "What still warns is a ridge (a zero-length branch trading length with its "
              "neighbour) that no product proposal follows; the outer k̂ partly reflects it.")
    r = by.get("DS8")
    if r is not None and r.get("status") == "ok":
        vs = [v for v in r.get("variants", []) if v.get("status") == "ok"]
        notes.append(
            f"DS8 ({_sample_label(r)}, the row): {_est(r)}. Second estimates: "
            + "; ".join(f"{_sample_label(v)}"
                        + (", P(S|D) from the SBN" if v.get("posterior_source") == "sbn" else "")
                        + (f", up to {v['settings']['max_topologies']} topologies"
                           if "max_topologies" in v.get("settings", {}) else "")
                        + f": {_est(v)}" for v in vs) + ".")
    return notes


def annotate(row: dict, pub: dict) -> dict:
    """Add the published values, the VBPI-family consensus and the issue's tolerance
    verdict (DS1: 0.3 nats of MrBayes SS; others: 0.5 of the consensus) to a row and its
    variants."""
    name = row["dataset"]
    p = pub.get(name, {})
    row["published"] = p
    fam = [p[k][0] for k in ("VBPI", "VBPI-GNN", "SBN") if k in p]
    row["consensus"] = sum(fam) / len(fam) if fam else None
    if row["consensus"] is not None and "MrBayes_SS" in p:
        ref = p["MrBayes_SS"][0] if name == "DS1" else row["consensus"]
        tol = DS1_TOL if name == "DS1" else OTHER_TOL
        for r in [row] + row.get("variants", []):
            if r.get("status") == "ok":
                r["within_tolerance"] = abs(r["log_z"] - ref) <= tol
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--only", nargs="+", metavar="DSk",
                    help="re-run only these data sets and replace their rows in the existing "
                         "tree_space.json (--datasets DSk --update); e.g. --only DS1 to re-time "
                         "DS1 on a quiet machine (add --no-mrbayes to keep the stored MrBayes peer)")
    ap.add_argument("--reps", nargs="+", type=int, default=None,
                    help="short-run replicates (default rep_1 rep_2; DS8 all ten)")
    ap.add_argument("--no-variants", action="store_true",
                    help="skip the second estimates (DS5 golden credible set, DS8 variants)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mb-ngen", type=int, default=1_000_000,
                    help="generations of the MrBayes ss (all steps together); the default takes "
                         "about as long as our DS1 estimate")
    ap.add_argument("--mb-steps", type=int, default=50)
    ap.add_argument("--no-mrbayes", action="store_true")
    ap.add_argument("--is-draws", type=int, default=1000,
                    help="SBN importance draws (DS5, DS6, and where the odds method refuses)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: DS2 only and a 2·10⁴-generation MrBayes ss")
    ap.add_argument("--update", action="store_true",
                    help="replace only the rows of --datasets (and MrBayes if run) in the "
                         "existing tree_space.json of --out")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="take the rows of --merge-datasets from these tree_space.json files "
                         "(runs made in parallel into other --out folders) into --out's, and "
                         "rewrite its Markdown; runs nothing")
    ap.add_argument("--merge-datasets", nargs="+", metavar="DSk")
    args = ap.parse_args(argv)
    if args.quick:
        args.datasets, args.mb_ngen, args.mb_steps = ["DS2"], 20_000, 10
    if args.only:
        args.datasets, args.update = list(args.only), True
    if args.merge:
        # rows of separate runs (e.g. data sets run in parallel into their own --out)
        args.datasets, args.update, args.no_mrbayes = [], True, True
    pub = published()
    rows = []
    previous = {}
    if args.update and (Path(args.out) / "tree_space.json").exists():
        previous = json.loads((Path(args.out) / "tree_space.json").read_text())
    for name in args.datasets:
        print(f"{name} ...", file=sys.stderr, flush=True)
        row = run_dataset(name, args.reps, args.seed, args.is_draws, not args.no_variants)
        rows.append(annotate(row, pub))
        print(json.dumps({k: v for k, v in row.items() if k != "published"}), file=sys.stderr)
    wanted = set(args.merge_datasets) if args.merge_datasets else None
    for path in args.merge or []:
        rows += [annotate(r, pub) for r in json.loads(Path(path).read_text())["rows"]
                 if wanted is None or r["dataset"] in wanted]
    if previous:
        fresh = {r["dataset"]: r for r in rows}
        order = [r["dataset"] for r in previous["rows"]] + [n for n in fresh if n not in
                                                             {r["dataset"] for r in previous["rows"]}]
        old = {r["dataset"]: r for r in previous["rows"]}
        rows = [fresh.get(n, old.get(n)) for n in order]
    doc = {"machine": f"{os.cpu_count()} cores, shared with other jobs (times are upper bounds)",
           "seed": args.seed, "rows": rows,
           "ds1_seconds": next((r["seconds"] for r in rows if r["dataset"] == "DS1"
                                and r.get("status") == "ok"), None),
           "notes": dataset_notes(rows) + [
               "Standard errors are Monte-Carlo errors given the samples: P(S|D) between the "
               "runs (floored at the binomial error) and the per-topology Gamma-Laplus IS "
               "errors; for SBN-IS the spread of the importance weights and the inner errors. "
               "They do not include a bias from runs that have not converged, nor, where the "
               "inner estimator's own weights are heavy-tailed (DS6, see its note), an error "
               "that its delta-method standard error misses.",
           ]}
    if not args.no_mrbayes:
        print("MrBayes ss on DS1 ...", file=sys.stderr, flush=True)
        doc["mrbayes"] = mrbayes_peer(args.mb_ngen, args.mb_steps, args.seed)
    elif previous.get("mrbayes"):
        doc["mrbayes"] = previous["mrbayes"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree_space.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "tree_space.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
