"""Marginal likelihood over tree space on DS1–DS8 against the published table, and
MrBayes' own stepping stone over tree space on DS1 as the speed peer.

For each data set with short runs in ../shared/data/DSk/short_run (MrBayes ``.trprobs``
summaries of ordinary-length JC69 runs; DS5 has none, DS6 one), the posterior-odds
estimator of :func:`phylo.marginal.tree_space_marginal` (defaults: Gamma-Laplus IS on
each of the most frequent topologies until 95 % of the posterior or 40 topologies)
is run on two short runs (rep_1, rep_2; between-run errors), and compared with the
MrBayes stepping-stone and VBPI values quoted in
../shared/reference/published/vbpi_family_mll (JC69, Exp(10), uniform topologies).
The "VBPI-family consensus" is the mean of VBPI, VBPI-GNN and SBN there.
Wall time is measured after the sample is read (the issue's target: DS1 ≤ 60 s on two
cores, error ≤ 0.3 nats); this machine is shared with other jobs, so times are upper
bounds.

MrBayes peer: an ``ss`` with topology moves on DS1 (``--mb-ngen`` generations over
``--mb-steps`` steps, 2 runs × 1 chain; by default about as long as our DS1 estimate, an
equal-time comparison) is timed in the same run, and its CPU time per generation is
extrapolated to the settings of the fixed-topology reference in
../shared/reference/primates/mrbayes_ss (50 steps, 5.1 × 10⁶ generations, 2 runs),
which is what an SE of ~0.1–0.2 nats over tree space needs at least (stated).

Writes tree_space.json and tree_space.md to benchmarks/results/ (or --out).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
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


def run_dataset(name: str, reps: list[int], seed: int, is_draws: int) -> dict:
    folder = SHARED / "data" / name
    runs = [folder / "short_run" / f"rep_{r}" / f"{name}.trprobs.gz" for r in reps]
    runs = [p for p in runs if p.exists()]
    if not runs:
        runs = sorted((folder / "short_run").glob("rep_*/*.trprobs.gz"))[:len(reps)]
    if not runs:
        return {"dataset": name, "status": "no short run in ../shared/data (needs a MrBayes run)"}
    aln = read_alignment(folder / f"{name}.fasta")
    t0 = time.perf_counter()
    tss = read_tree_sample([str(p) for p in runs], taxa=aln.taxa)
    read_s = time.perf_counter() - t0
    row = {"dataset": name, "runs": [str(p.relative_to(SHARED)) for p in runs],
           "n_taxa": aln.n_taxa, "read_seconds": round(read_s, 2),
           "sample_topologies": tss.pooled.n_topologies}
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        res = tree_space_marginal(aln, tss, "JC", seed=seed)
    except PhyloError as exc:
        # a diffuse posterior: the SBN importance sampler (what the refusal advises)
        row["odds_refused"] = str(exc)
        t0 = time.perf_counter()
        c0 = time.process_time()
        try:
            res = tree_space_marginal(aln, tss, "JC", seed=seed, method="sbn-is", n_draws=is_draws)
        except PhyloError as exc2:
            row.update({"status": f"refused: {exc2}", "seconds": round(time.perf_counter() - t0, 2)})
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


def mrbayes_peer(ngen: int, steps: int, seed: int) -> dict:
    mb = shutil.which("mb")
    if mb is None:
        return {"status": "mb (MrBayes) not installed"}
    from Bio import SeqIO
    recs = list(SeqIO.parse(str(SHARED / "data" / "DS1" / "DS1.fasta"), "fasta"))
    work = Path(tempfile.mkdtemp(prefix="mb_ds1_"))
    lines = ["#NEXUS", "begin data;", f"  dimensions ntax={len(recs)} nchar={len(recs[0].seq)};",
             "  format datatype=dna missing=? gap=-;", "  matrix"]
    lines += [f"  {r.id}  {r.seq}" for r in recs]
    lines += ["  ;", "end;", "begin mrbayes;",
              f"  set autoclose=yes nowarn=yes seed={seed} swapseed={seed};",
              "  lset nst=1 rates=equal;",
              "  prset statefreqpr=fixed(equal) brlenspr=unconstrained:exp(10.0) topologypr=uniform;",
              f"  ss ngen={ngen} samplefreq=100 printfreq={max(ngen // 5, 100)} nruns=2 nchains=1 "
              f"mcmcdiagn=no nsteps={steps} alpha=0.4 burninss=-1 filename=ds1_ss;", "end;"]
    (work / "ds1_ss.nex").write_text("\n".join(lines) + "\n")
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
            "cpu_seconds": cpu_s,
            "log_z_mean": float(m.group(1)) if m else None,
            "log_z_runs": [float(x) for x in runs],
            "seconds_per_generation": per_gen,
            "extrapolated_seconds": round(per_gen * ref_gens, 0),
            "extrapolation": f"{MB_REF_STEPS} steps, {MB_REF_NGEN} generations, {MB_REF_RUNS} runs "
                             "(the fixed-topology reference settings in "
                             "shared/reference/primates/mrbayes_ss) at the measured time per "
                             "generation; over tree space a reliable ss needs at least that"}


def markdown(doc: dict) -> str:
    out = ["# Marginal likelihood over tree space (DS1–DS8)", "",
           f"Machine: {doc['machine']}. Seed {doc['seed']}. Estimator: posterior odds "
           "(Gamma-Laplus IS per topology, S = most frequent topologies up to 95 % mass or 40), "
           "runs rep_1 + rep_2 of the short runs (between-run error of P(S|D)). "
           "Published: ../shared/reference/published/vbpi_family_mll (JC69, Exp(10), uniform "
           "topologies); consensus = mean of VBPI, VBPI-GNN, SBN. Times after reading the sample; "
           "wall times on a machine loaded by other jobs (load ~10 on 2 cores); CPU = process "
           "CPU time (empty for rows from the first run, before CPU time was recorded).",
           "", "| data set | taxa | method | ours | se | topologies | P(S) or ESS, k̂ | MrBayes SS | VBPI | "
           "consensus | ours − consensus | ours − MrBayes | within tol | wall (s) | CPU (s) |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in doc["rows"]:
        pub = r.get("published", {})
        mb = pub.get("MrBayes_SS")
        vb = pub.get("VBPI")
        cons = r.get("consensus")
        if r.get("status") != "ok":
            out.append(f"| {r['dataset']} | {r.get('n_taxa', '')} | – | – | | | | "
                       f"{mb[0] if mb else ''} | {vb[0] if vb else ''} | "
                       f"{'' if cons is None else f'{cons:.2f}'} | | | {r['status']} | "
                       f"{r.get('seconds', '')} | |")
            continue
        mass = (f"{r['posterior_mass']:.3f}" if r.get("method", "odds") == "odds"
                 else f"ESS {r['ess']:.1f}, k̂ {r['pareto_k']:.2f}")
        out.append(
            f"| {r['dataset']} | {r['n_taxa']} | {r.get('method', 'odds')} | {r['log_z']:.2f} | "
            f"{r['std_error']:.3f} | {r['n_topologies']} | {mass} | {mb[0]:.2f} ({mb[1]}) | "
            f"{vb[0]:.2f} ({vb[1]}) | {cons:.2f} | {r['log_z'] - cons:+.2f} | "
            f"{r['log_z'] - mb[0]:+.2f} | {'yes' if r['within_tolerance'] else 'NO'} | {r['seconds']} | "
            f"{r.get('cpu_seconds', '')} |")
    m = doc.get("mrbayes", {})
    out += ["", "## MrBayes `ss` over tree space on DS1 (speed peer)", ""]
    if m.get("status") == "ok":
        ours = next((r for r in doc["rows"] if r["dataset"] == "DS1" and r.get("status") == "ok"), {})
        out += [f"Equal-time run: {m['nsteps']} steps, ngen {m['ngen']} (all steps), 2 runs × 1 "
                f"chain: {m['cpu_seconds']} s CPU ({m['seconds']} s wall on the loaded machine), "
                f"log Z {m['log_z_mean']} (runs {m['log_z_runs']}): "
                f"**{(m['log_z_mean'] or 0) + 7108.42:+.2f} nats** from −7108.42, although the two "
                "runs agree (a bias of too-short steps, which run-to-run spread does not show). "
                f"Ours on DS1: {ours.get('cpu_seconds')} s CPU, "
                f"{(ours.get('log_z') or 0) + 7108.42:+.2f} nats.",
                "", f"MrBayes CPU time: {m['seconds_per_generation'] * 1e6:.1f} s per 10⁶ generations. "
                f"Extrapolated to {m['extrapolation']}: {m['extrapolated_seconds'] / 60:.1f} min CPU "
                "— a lower bound: the settings behind the published −7108.42 ± 0.18 are not in "
                "our sources, and the equal-time run above is still 1.6 nats off."]
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
        "stepping stone over tree space is biased low when its steps are short (the equal-time "
        "MrBayes run above is 1.6 nats low on DS1 with its two runs agreeing), and the "
        "published MrBayes SDs (0.5-2.4 nats) are large. Our remaining risk is the short runs "
        "themselves: where S holds little mass (DS7 0.64, DS8 0.51), unconverged topology "
        "frequencies bias P(S|D), which the between-run error only partly captures; DS8 is "
        "the case to re-check with longer runs.")
    out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--reps", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mb-ngen", type=int, default=1_000_000,
                    help="generations of the MrBayes ss (all steps together); the default takes "
                         "about as long as our DS1 estimate")
    ap.add_argument("--mb-steps", type=int, default=50)
    ap.add_argument("--no-mrbayes", action="store_true")
    ap.add_argument("--is-draws", type=int, default=200,
                    help="SBN importance draws where the odds method refuses (diffuse posteriors)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: DS2 only and a 2·10⁴-generation MrBayes ss")
    ap.add_argument("--update", action="store_true",
                    help="replace only the rows of --datasets (and MrBayes if run) in the "
                         "existing tree_space.json of --out")
    args = ap.parse_args(argv)
    if args.quick:
        args.datasets, args.mb_ngen, args.mb_steps = ["DS2"], 20_000, 10
    pub = published()
    rows = []
    previous = {}
    if args.update and (Path(args.out) / "tree_space.json").exists():
        previous = json.loads((Path(args.out) / "tree_space.json").read_text())
    for name in args.datasets:
        print(f"{name} ...", file=sys.stderr, flush=True)
        row = run_dataset(name, args.reps, args.seed, args.is_draws)
        p = pub.get(name, {})
        row["published"] = p
        fam = [p[k][0] for k in ("VBPI", "VBPI-GNN", "SBN") if k in p]
        row["consensus"] = sum(fam) / len(fam) if fam else None
        if row.get("status") == "ok" and row["consensus"] is not None and "MrBayes_SS" in p:
            ref = p["MrBayes_SS"][0] if name == "DS1" else row["consensus"]
            tol = DS1_TOL if name == "DS1" else OTHER_TOL
            row["within_tolerance"] = abs(row["log_z"] - ref) <= tol
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "published"}), file=sys.stderr)
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
           "notes": [
               "DS5: no short run is stored (../shared/data/README.md) and a MrBayes run of "
               "DS5 long enough for an SBN proposal (its posterior is diffuse: the top 1000 "
               "topologies hold 25 %) did not fit this session; not estimated.",
               "DS6: one short run with 14018 topologies; the odds method refuses it (its best "
               "topologies hold ~1 % of the posterior), so the SBN importance sampler (SBN-EM-α, "
               "α = 0.1) is used with few draws: see its ESS and Pareto k̂ (> 0.7 means the "
               "estimate and its error are unreliable).",
               "Standard errors are Monte-Carlo errors given the short runs: P(S|D) between the "
               "two runs (floored at the binomial error) and the per-topology Gamma-Laplus IS "
               "errors. They do not include a bias from runs that have not converged.",
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
