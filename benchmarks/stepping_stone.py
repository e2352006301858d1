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

Data sets (``--datasets``, default both):

* primates: MrBayes runs the reference input ``mrbayes_ss/ss_seed1.nex`` itself
  (ngen, printfreq, seed and file name substituted).
* DS1 (27 taxa, 1949 sites): the topology is the first (most probable) one of
  ``data/DS1/JC_no_gamma_credible_set_ds1``. The MrBayes input is generated into the
  temporary folder in the primates file's form: a fresh data block written from
  ``phylo.read_alignment(DS1.nex).to_nexus()`` (the data both programs see), a trees
  block with the fixed topology (no branch lengths; taxon names quoted where they are
  not plain NEXUS tokens), and the primates file's ``mrbayes`` block verbatim.

Also times Gamma Laplus on the DS1 topology (compile excluded).

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

N_STEPS = 50
ALPHA = 0.4
SAMPLEFREQ = 100


def run_mrbayes(template: str, ngen: int, seed: int, workdir: Path) -> dict:
    text = template
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


PRIMATES = SHARED / "reference/primates"
DS1 = SHARED / "data/DS1"
_TOKEN = re.compile(r"^[A-Za-z0-9_.]+$")


def nexus_name(name: str) -> str:
    """A taxon name as a NEXUS token (single-quoted when it has other characters)."""
    return name if _TOKEN.match(name) else "'" + name.replace("'", "''") + "'"


def ds1_topology() -> str:
    """The first (most probable) topology of the DS1 JC credible set (Newick, no lengths)."""
    first = (DS1 / "JC_no_gamma_credible_set_ds1").read_text().splitlines()[0]
    return first.split("\t")[1].strip()


def mrbayes_block(template: Path) -> str:
    """The ``begin mrbayes; ... end;`` block of a reference input, verbatim."""
    m = re.search(r"begin mrbayes;.*?end;", template.read_text(), re.S | re.I)
    return m.group(0)


def ds1_mrbayes_input(aln) -> str:
    """DS1 in the form of the primates ss_seed*.nex: data, trees (fixedtree), mrbayes."""
    newick = re.sub(r"[A-Za-z0-9_.']+", lambda m: nexus_name(m.group(0)), ds1_topology())
    leaves = set(re.findall(r"[^(),;:\s]+", ds1_topology()))
    assert leaves == set(aln.taxa), "DS1 topology and alignment name different taxa"
    data = aln.to_nexus().replace("#NEXUS\n", "")
    if any(not _TOKEN.match(t) for t in aln.taxa):   # quote names in the matrix too
        for t in aln.taxa:
            data = data.replace(f"  {t} ", f"  {nexus_name(t)} ", 1)
    return (f"#NEXUS\n\n{data}\nbegin trees;\n  tree fixedtree = [&U] {newick}\nend;\n\n"
            f"{mrbayes_block(PRIMATES / 'mrbayes_ss/ss_seed1.nex')}\n")


def load_dataset(name: str) -> dict:
    if name == "primates":
        aln = read_alignment(PRIMATES / "primates.nex")
        tree = parse_newick((PRIMATES / "mrbayes_ss/fixed_tree_jc_ml.nwk").read_text())
        return {"problem": Problem(aln, tree, "JC"), "aln": aln,
                "mrbayes_input": (PRIMATES / "mrbayes_ss/ss_seed1.nex").read_text(),
                "mrbayes_input_source": "reference/primates/mrbayes_ss/ss_seed1.nex",
                "reference_mrbayes_full": "−6468.88, −6468.90, −6468.94 (5.1e6 generations, seeds 1–3)"}
    if name == "DS1":
        aln = read_alignment(DS1 / "DS1.nex")
        tree = parse_newick(ds1_topology())
        return {"problem": Problem(aln, tree, "JC"), "aln": aln,
                "mrbayes_input": ds1_mrbayes_input(aln),
                "mrbayes_input_source": "generated: DS1.nex data block rewritten by Alignment.to_nexus(), "
                                        "first credible-set topology as fixedtree, primates mrbayes block",
                "reference_mrbayes_full": None}
    raise ValueError(name)


def gamma_laplus_ds1() -> dict:
    aln = read_alignment(DS1 / "DS1.fasta")
    problem = Problem(aln, parse_newick(ds1_topology()), "JC")
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


def run_dataset(name: str, ngen: int, seeds: list[int], use_mb: bool) -> dict:
    ds = load_dataset(name)
    problem, aln = ds["problem"], ds["aln"]
    t0 = time.perf_counter()
    # warm-up: a short ladder through the same estimator path, so that every kernel
    # the timed runs use is compiled (or loaded from the cache) before timing starts
    run_phylo(problem, (N_STEPS + 1) * 4 * SAMPLEFREQ, seed=0)
    compile_s = time.perf_counter() - t0
    res = {"dataset": f"{name} ({aln.n_taxa} taxa, {aln.n_sites} sites, {aln.n_patterns} patterns)",
           "n_taxa": aln.n_taxa, "n_sites": aln.n_sites, "n_patterns": aln.n_patterns,
           "n_branches": problem.n_branches, "ngen_per_run": ngen,
           "mrbayes_input": ds["mrbayes_input_source"],
           "reference_mrbayes_full": ds["reference_mrbayes_full"],
           "phylo_warmup_seconds": compile_s, "runs": []}
    for seed in seeds:
        row = {"phylo": run_phylo(problem, ngen, seed)}
        if use_mb:
            with tempfile.TemporaryDirectory() as tmp:
                row["mrbayes"] = run_mrbayes(ds["mrbayes_input"], ngen, seed, Path(tmp))
            p, m = row["phylo"], row["mrbayes"]
            if m["returncode"] != 0 or m["log_marginal_likelihood"] is None:
                print(f"MrBayes failed on {name} seed {seed} (returncode {m['returncode']})", file=sys.stderr)
            row["per_evaluation_ratio_mrbayes_over_phylo"] = (
                (m["seconds"] / m["likelihood_evaluations"]) / (p["seconds"] / p["likelihood_evaluations"]))
        res["runs"].append(row)
        print(name, json.dumps(row, default=float), flush=True)
    return res


def _fmt(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="102 000 generations (2 000 per step)")
    g.add_argument("--full", action="store_true", help="MrBayes' reference 5.1e6 generations")
    ap.add_argument("--ngen", type=int, default=None, help="generations per run, all data sets")
    ap.add_argument("--datasets", nargs="+", choices=["primates", "DS1"], default=["primates", "DS1"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--no-mrbayes", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args(argv)
    ngen = args.ngen or (102_000 if args.quick else 5_100_000 if args.full else 510_000)
    use_mb = bool(shutil.which("mb")) and not args.no_mrbayes
    load_start = os.getloadavg()
    t_start = time.perf_counter()
    out = {"benchmark": "stepping_stone",
           "settings": {"n_steps": N_STEPS, "alpha": ALPHA, "samplefreq": SAMPLEFREQ, "ngen_per_run": ngen,
                        "nruns": 2, "nchains": 1, "burnin_fraction": 0.25, "model": "JC69",
                        "branch_length_prior": "iid Exponential(10)", "topology": "fixed"},
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "loadavg_1_5_15_at_start": load_start},
           "mrbayes": "3.2.7a" if use_mb else "not run", "datasets": {}}
    for name in args.datasets:
        out["datasets"][name] = run_dataset(name, ngen, args.seeds, use_mb)
    try:
        out["gamma_laplus_ds1"] = gamma_laplus_ds1()
    except FileNotFoundError as exc:
        out["gamma_laplus_ds1"] = f"skipped: {exc}"
    out["machine"]["loadavg_1_5_15_at_end"] = os.getloadavg()
    out["total_seconds"] = time.perf_counter() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stepping_stone.json").write_text(json.dumps(out, indent=1, default=float))
    la, lb = out["machine"]["loadavg_1_5_15_at_start"], out["machine"]["loadavg_1_5_15_at_end"]
    lines = ["# Stepping stone: phylo vs MrBayes 3.2.7a (JC69, Exp(10), fixed topology)", "",
             f"MrBayes' settings: {N_STEPS} steps at Beta({ALPHA}, 1) quantiles, samplefreq {SAMPLEFREQ}, "
             f"25 % burn-in per step, nruns=2 nchains=1; {ngen} generations per run "
             f"({ngen // (N_STEPS + 1)} per step) for both programs. log Z is MrBayes' \"Mean\" "
             "(log-mean-exp of the two runs); per-run values in brackets. Ratio = MrBayes seconds per "
             "likelihood evaluation / phylo seconds per evaluation (phylo warm-up excluded).", "",
             f"Machine: {os.cpu_count()} CPUs; load average (1/5/15 min) {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f} "
             f"at start, {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f} at end (another process may hold a core); "
             f"whole benchmark {out['total_seconds']:.0f} s.", "",
             "| data set | seed | phylo log Z (runs) | MrBayes log Z (runs) | phylo s | MrBayes s | phylo evals | "
             "MrBayes evals | MrBayes/phylo time per eval |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, ds in out["datasets"].items():
        for r in ds["runs"]:
            p, m = r["phylo"], r.get("mrbayes", {})
            pr = ", ".join(f"{x:.2f}" for x in p["per_run"])
            mr = ", ".join(f"{x:.2f}" for x in m.get("per_run", []))
            lines.append(f"| {name} | {p['seed']} | {p['log_marginal_likelihood']:.2f} ({pr}) | "
                         f"{_fmt(m.get('log_marginal_likelihood'))} ({mr}) | {p['seconds']:.1f} | "
                         f"{_fmt(m.get('seconds'), '.1f')} | {p['likelihood_evaluations']} | "
                         f"{m.get('likelihood_evaluations', '–')} | "
                         f"{_fmt(r.get('per_evaluation_ratio_mrbayes_over_phylo'))} |")
    lines.append("")
    for name, ds in out["datasets"].items():
        note = f"- {ds['dataset']}, {ds['n_branches']} branches; MrBayes input: {ds['mrbayes_input']}"
        if ds["reference_mrbayes_full"]:
            note += f"; MrBayes reference: {ds['reference_mrbayes_full']}"
        lines.append(note + ".")
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
