"""``phylo compare``: rank candidate models × topologies by marginal likelihood.

Candidates are every pair of a substitution model (``--models``) and a topology
(``--trees``/``--tree``; without one, the neighbour-joining tree of the alignment's
Jukes–Cantor distances, :func:`phylo.trees.nj.nj_tree`, and the report says so).
Each candidate's log marginal likelihood is estimated by one registered estimator
(``--estimator``, stepping stone by default) ``--repeats`` times by
:func:`phylo.marginal.workflow.compare_candidates`, in this process or on
``--executor`` (local processes or a Dask cluster; the numbers do not depend on it);
:mod:`phylo.report` turns the rows into an HTML page, a Markdown file, JSON and CSV
with log Bayes factors against the best candidate and their Kass–Raftery reading.

Over tree space (``--tree-sample RUN1.t [RUN2.t ...]``): each model is one candidate
whose log marginal likelihood is integrated over unrooted topologies (uniform prior)
by :class:`phylo.marginal.tree_space.TreeSpaceEstimator` (posterior odds over the
runs' most frequent topologies, or SBN importance sampling; ``--estimator`` is then
the per-topology estimator, Gamma-Laplus IS by default); the report notes which
topologies carried each estimate. ``--clade A,B,C`` / ``--constraint NEWICK`` then
give clade / constraint Bayes factors from the sample (exact prior odds).

Checkpointing: every finished (candidate, repeat) is saved in ``OUT/checkpoint/``
(and a ladder estimator saves every rung there too); ``--resume`` reuses what a
previous run of the *same* command finished. On Ctrl-C the finished candidates are
written as a partial report, and the exit status is 130.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from ..errors import EstimatorError, PhyloError
from . import _common

DEFAULT_MODELS = ("JC69", "HKY+G4")
DEFAULT_ESTIMATOR = "stepping-stone"
#: Per-topology estimator over tree space (Fourment et al. 2020's best fast one).
TREE_SPACE_INNER = "gamma-laplus-is"
DEFAULT_OUT = "compare-report"
#: Quick defaults for the stepping-stone family so that the example data finishes in
#: well under two minutes on two cores; the report states them, raise them for a paper.
QUICK_LADDER_STEPS = 16
QUICK_SAMPLES_PER_STEP = 200

EXAMPLES = """\
examples:
  # two models x three topologies = six candidates, stepping stone, report in report/
  phylo compare data/example.fasta --models JC69 HKY+G4 \\
      --trees data/candidates/*.nwk --out report/

  # topologies only, another estimator, 3 repeats, JSON summary on stdout
  phylo compare data/example.fasta --trees data/candidates/*.nwk --models GTR+G4 \\
      --estimator path-sampling --repeats 3 --format json --quiet

  # models only, on the neighbour-joining tree (said so in the report)
  phylo compare data/example.fasta --models JC69 HKY+G4 GTR+G4

  # models integrated over tree space (two MrBayes runs of a JC analysis), with the
  # Bayes factor of a clade
  phylo compare data.nex --tree-sample run1.t run2.t --sample-model JC \
      --models JC HKY+G4 GTR+G4 --clade Homo_sapiens,Pan

  # after Ctrl-C (or a crash): finish the remaining candidates
  phylo compare data/example.fasta --models JC69 HKY+G4 --trees data/candidates/*.nwk \\
      --out report/ --resume

output files (in --out): report.html (self-contained, open in a browser), report.md,
report.json, summary.csv, figures/*.png|svg, checkpoint/ (for --resume)
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="rank candidate models and topologies by marginal likelihood "
                        "and write an HTML/Markdown/JSON report",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("alignment", help="DNA alignment (FASTA, NEXUS or PHYLIP; gzip ok)")
    p.add_argument("--models", nargs="+", metavar="MODEL", default=None,
                   help="candidate substitution models in IQ-TREE syntax, e.g. JC69 "
                        "HKY+G4 GTR+G4 (default: %s)" % " ".join(DEFAULT_MODELS))
    p.add_argument("--trees", nargs="+", metavar="TREE", default=[],
                   help="candidate topologies: Newick or NEXUS files (every tree in a "
                        "file is a candidate); default: the neighbour-joining tree")
    p.add_argument("--tree", action="append", metavar="TREE", default=[],
                   help="one more candidate topology file (repeatable)")
    p.add_argument("--constraint", action="append", metavar="NEWICK", default=[],
                   help="a candidate topology given by a constraint: a Newick string or "
                        "file over all or some taxa (polytomies allowed); the candidate "
                        "is the neighbour-joining tree that contains every split of the "
                        "constraint (repeatable). With --tree-sample: a constraint over "
                        "every taxon whose Bayes factor is reported")
    p.add_argument("--tree-sample", nargs="+", metavar="RUN", default=None,
                   help="integrate every model over tree space using these runs' tree "
                        "samples (MrBayes .t/.trprobs, BEAST .trees; one file per run)")
    p.add_argument("--sample-model", default=None, metavar="MODEL",
                   help="with --tree-sample: the model the sample was made under; models "
                        "that differ are integrated by SBN importance sampling")
    p.add_argument("--sample-burnin", type=float, default=0.25,
                   help="with --tree-sample: burn-in fraction of each run (default 0.25)")
    p.add_argument("--tree-space-method", choices=("odds", "sbn-is"), default="odds",
                   help="with --tree-sample: posterior odds or SBN importance sampling")
    p.add_argument("--clade", action="append", default=[], metavar="TAXA",
                   help="with --tree-sample: comma-separated taxa of a clade whose Bayes "
                        "factor is reported (repeatable)")
    p.add_argument("--estimator", default=None,
                   help="marginal-likelihood estimator by its registered name (default: "
                        f"{DEFAULT_ESTIMATOR}; with --tree-sample the per-topology estimator, "
                        f"default {TREE_SPACE_INNER}; `phylo marginal --help` lists them)")
    p.add_argument("--steps", type=_common.positive_int, default=None,
                   help="ladder steps of stepping-stone/path-sampling estimators "
                        f"(default for compare: {QUICK_LADDER_STEPS})")
    p.add_argument("--samples", type=_common.positive_int, default=None,
                   help="MCMC samples per ladder step, or samples of a sampling "
                        f"estimator (default for compare: {QUICK_SAMPLES_PER_STEP} per step)")
    p.add_argument("--burnin", type=_common.nonnegative_int, default=None,
                   help="discarded samples per chain or ladder step (estimator default)")
    p.add_argument("--thin", type=_common.positive_int, default=None,
                   help="generations between kept MCMC samples (estimator default: the "
                        "number of parameters)")
    p.add_argument("--alpha", type=_common.positive_float, default=None,
                   help="ladder at Beta(alpha, 1) quantiles (estimator default 0.3; "
                        "MrBayes uses 0.4)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   dest="estimator_settings",
                   help="any other estimator setting, e.g. --set alpha=0.4 (repeatable)")
    p.add_argument("--repeats", type=_common.positive_int, default=1,
                   help="independent repeats per candidate; with 2 or more the error is "
                        "the between-repeat standard error (default: %(default)s)")
    _common.add_fasta_names_argument(p)
    _common.add_seed_argument(p)
    _common.add_threads_argument(p)
    _common.add_device_argument(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="folder for the report and the checkpoint (default: %(default)s)")
    _common.add_format_argument(p)
    p.add_argument("--executor", default="serial", metavar="SPEC",
                   help="where the (candidate, repeat) runs go: serial (this process, "
                        "default), local:N (N processes on this machine) or dask:ADDRESS "
                        "(a running Dask scheduler, e.g. dask:tcp://10.0.0.5:8786; needs "
                        "the distributed extra). The numbers do not depend on it.")
    p.add_argument("--resume", action="store_true",
                   help="reuse the candidates a previous run of the same command "
                        "finished (from DIR/checkpoint)")
    p.add_argument("--title", default="Model comparison by marginal likelihood",
                   help="title of the report")
    _common.add_quiet_argument(p)
    p.set_defaults(func=run)


# -- estimator ------------------------------------------------------------------------
def base_estimator(name: str):
    """The registered estimator ``name`` with its default settings (an
    :class:`~phylo.errors.EstimatorError` lists the valid names otherwise)."""
    from ..marginal import get_estimator
    return get_estimator(name)


def estimator_settings(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Settings for the estimator from ``--steps``/``--samples``/``--burnin``/``--thin``/
    ``--alpha``/``--set``, and notes.

    Options map to settings through the estimator's declared ``setting_roles``; ladder
    estimators get compare's quick defaults (:data:`QUICK_LADDER_STEPS`,
    :data:`QUICK_SAMPLES_PER_STEP`) unless the user gives values.
    """
    base = base_estimator(name)
    fields = base.settings()
    roles = dict(base.setting_roles)
    settings: dict[str, Any] = {}
    notes: list[str] = []
    steps_field, samples_field = roles.get("steps"), roles.get("samples")
    if args.steps is not None:
        if steps_field is None:
            raise EstimatorError(f"{name} has no ladder: --steps does not apply")
        if args.steps < 1:
            raise EstimatorError(f"--steps must be at least 1, got {args.steps}")
        settings[steps_field] = args.steps
    elif steps_field is not None and fields[steps_field] > QUICK_LADDER_STEPS:
        settings[steps_field] = QUICK_LADDER_STEPS
        notes.append(f"Quick settings: {QUICK_LADDER_STEPS} ladder steps (the estimator's "
                     f"default is {fields[steps_field]}); raise with --steps.")
    if args.samples is not None:
        if samples_field is None:
            raise EstimatorError(f"{name} takes no sample size: --samples does not apply")
        if args.samples < 1:
            raise EstimatorError(f"--samples must be at least 1, got {args.samples}")
        settings[samples_field] = args.samples
    elif (steps_field is not None and samples_field is not None
          and fields[samples_field] > QUICK_SAMPLES_PER_STEP):
        settings[samples_field] = QUICK_SAMPLES_PER_STEP
        notes.append(f"Quick settings: {QUICK_SAMPLES_PER_STEP} samples per step (the "
                     f"estimator's default is {fields[samples_field]}); raise with "
                     "--samples.")
    for flag in ("burnin", "thin", "alpha"):
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag not in roles:
            raise EstimatorError(f"{name} has no setting {flag!r}: --{flag} does not apply")
        if value < 0 or (flag != "burnin" and value == 0):
            raise EstimatorError(f"--{flag} must be positive, got {value}")
        settings[roles[flag]] = value
    for item in args.estimator_settings:
        if "=" not in item:
            raise EstimatorError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in fields:
            raise EstimatorError(f"{name}: unknown setting {key!r}; valid: "
                                 f"{', '.join(fields) or 'none'}")
        settings[key] = _coerce(value, fields[key], key)
        number = settings[key]
        if (isinstance(number, (int, float)) and not isinstance(number, bool)
                and not (math.isfinite(number) and number >= 0)):
            # every estimator setting is a count, size, rate or tolerance
            raise EstimatorError(f"--set {key}: must be a finite number >= 0, got {value!r}")
    if getattr(args, "device", "cpu") == "cuda":
        _common.apply_device(args)
        if "device" in fields:
            settings["device"] = "cuda"
        else:
            notes.append(f"--device cuda: {name} evaluates one point at a time, so it ran on "
                         "the CPU (estimators with batched draws use the GPU).")
    return settings, notes


def _coerce(text: str, default: Any, key: str) -> Any:
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise EstimatorError(f"--set {key}: cannot read {text!r} as "
                             f"{type(default).__name__}") from None
    if default is None:
        for conv in (int, float):
            try:
                return conv(text)
            except ValueError:
                pass
    return text


# -- the command --------------------------------------------------------------------------
def _candidates(args: argparse.Namespace, alignment):
    """The candidates the options name (fixed topologies, or models over tree space)
    and the clade evidence (tree space only)."""
    from ..marginal.candidates import (clade_bayes_factors, fixed_topology_candidates,
                                       tree_space_candidates)
    models = list(args.models or DEFAULT_MODELS)
    tree_files = list(args.trees) + list(args.tree)
    if args.tree_sample is None:
        if args.clade or args.sample_model:
            raise PhyloError("--clade and --sample-model need --tree-sample")
        return fixed_topology_candidates(alignment, models, tree_files=tree_files,
                                         constraints=args.constraint), None
    if tree_files:
        raise PhyloError("--tree-sample integrates over topologies: give it without "
                         "--trees/--tree")
    if not 0.0 <= args.sample_burnin < 1.0:
        raise PhyloError(f"--sample-burnin must be a fraction in [0, 1), got {args.sample_burnin}")
    candidates = tree_space_candidates(models, args.tree_sample, burnin=args.sample_burnin,
                                       sample_model=args.sample_model)
    clades = [[t.strip() for t in text.split(",") if t.strip()] for text in args.clade]
    evidence = clade_bayes_factors(alignment, args.tree_sample, clades=clades,
                                   constraints=args.constraint, burnin=args.sample_burnin,
                                   sample_model=args.sample_model)
    return candidates, evidence


def run(args: argparse.Namespace) -> int:
    from ..marginal.executors import parse_executor
    from ..marginal.workflow import SEED_CONVENTION
    from ..report import provenance
    from ..report.job import ComparisonInterrupted, model_comparison_report
    from ..report.render import CSV_COLUMNS

    if args.repeats < 1:
        raise PhyloError(f"--repeats must be at least 1, got {args.repeats}")
    if args.seed < 0:
        raise PhyloError(f"--seed must be a non-negative integer, got {args.seed}")
    parse_executor(args.executor)                 # a wrong --executor fails before any work
    _common.apply_threads(args)
    _common.require_file(args.alignment)
    _common.check_output_path(args.out, option="--out", folder=True)
    alignment = _common.read_alignment_arg(args)
    candidates, evidence = _candidates(args, alignment)
    tree_space = args.tree_sample is not None
    args.estimator = args.estimator or (TREE_SPACE_INNER if tree_space else DEFAULT_ESTIMATOR)
    estimator_name = base_estimator(args.estimator).name   # canonical spelling
    settings, setting_notes = estimator_settings(estimator_name, args)
    estimator = base_estimator(estimator_name).with_settings(**settings)
    if tree_space:
        from ..marginal.tree_space import TreeSpaceEstimator
        estimator = TreeSpaceEstimator(method=args.tree_space_method, inner=estimator_name,
                                       inner_settings=settings)
    log = (lambda msg: None) if args.quiet else (
        lambda msg: print(f"phylo compare: {msg}", file=sys.stderr))
    prov = provenance(command_line=canonical_command(args), files=[args.alignment] + [
        p for p in dict.fromkeys(list(args.trees) + list(args.tree)
                                 + list(args.tree_sample or []))], seed=args.seed,
        settings={"estimator": estimator_name, "estimator_settings": estimator.settings(),
                  "repeats": args.repeats, "executor": args.executor,
                  "threads": args.threads},
        seeds=SEED_CONVENTION)
    if _invoked_as_cli():
        prov["argv"] = ["phylo", *sys.argv[1:]]

    bar = None
    if _common.show_progress(args):
        from tqdm import tqdm
        bar = tqdm(total=len(candidates.candidates) * args.repeats, unit="run",
                   desc="phylo compare", file=sys.stderr)

    def progress(event) -> None:
        if bar is not None:
            bar.update(1)
        if event.reused:
            return
        task, row = event.task, event.task.row
        msg = (f"[{event.done}/{event.total}] {task.name}"
               + (f" (repeat {task.repeat + 1})" if args.repeats > 1 else "")
               + f": ln Z = {row['log_marginal_likelihood']:.2f} ({row['seconds']:.1f} s)")
        if bar is not None:
            bar.write(msg)
        else:
            log(msg)

    try:
        done = model_comparison_report(
            alignment, candidates, estimator, out=args.out, seed=args.seed,
            repeats=args.repeats, executor=args.executor, resume=args.resume,
            title=args.title, notes=setting_notes, clade_evidence=evidence,
            settings={"alignment": f"{args.alignment} ({alignment.n_taxa} taxa, "
                                   f"{alignment.n_sites} sites, {alignment.n_patterns} patterns)",
                      "threads": args.threads if args.threads is not None else "all cores",
                      "executor": args.executor},
            provenance_record=prov, progress=progress, log=log)
    except ComparisonInterrupted as stop:
        if bar is not None:
            bar.close()
        if stop.paths:
            print(f"phylo compare: interrupted; wrote a partial report of {stop.finished} of "
                  f"{stop.total} candidates to {stop.paths['html']}; rerun the same command "
                  "with --resume to finish", file=sys.stderr)
        else:
            print("phylo compare: interrupted before any candidate finished; rerun with "
                  "--resume to continue", file=sys.stderr)
        raise
    if bar is not None:
        bar.close()
    if done.warmup_seconds:
        log(f"compiled the kernels once, before the workers started "
            f"({done.warmup_seconds:.1f} s)")
    _print_summary(done.report, done.paths, args.format, CSV_COLUMNS, done.report.get("provenance", prov))
    log(f"report written to {done.paths['html']}")
    return 0


def canonical_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, every setting spelled out."""
    import shlex
    parts = ["phylo", "compare", args.alignment, "--models", *(args.models or DEFAULT_MODELS)]
    trees = list(args.trees) + list(args.tree)
    if trees:
        parts += ["--trees", *trees]
    if getattr(args, "tree_sample", None):
        parts += ["--tree-sample", *args.tree_sample, "--sample-burnin", str(args.sample_burnin),
                  "--tree-space-method", args.tree_space_method]
        if args.sample_model:
            parts += ["--sample-model", args.sample_model]
        for c in args.clade:
            parts += ["--clade", c]
        for c in args.constraint:
            parts += ["--constraint", c]
    parts += ["--estimator", args.estimator]
    if args.steps is not None:
        parts += ["--steps", str(args.steps)]
    if args.samples is not None:
        parts += ["--samples", str(args.samples)]
    for flag in ("burnin", "thin", "alpha"):
        if getattr(args, flag, None) is not None:
            parts += [f"--{flag}", str(getattr(args, flag))]
    for item in args.estimator_settings:
        parts += ["--set", item]
    parts += ["--repeats", str(args.repeats), "--seed", str(args.seed), "--out", args.out]
    if getattr(args, "executor", "serial") != "serial":
        parts += ["--executor", args.executor]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _invoked_as_cli() -> bool:
    """True when running as the ``phylo`` program (not main() called in-process)."""
    return Path(sys.argv[0]).name in ("phylo", "__main__.py", "-m")


def _print_summary(report: dict, paths: dict, fmt: str, columns: Sequence[str],
                   prov: dict) -> None:
    from ..report.render import json_ready
    rows = [{k: s.get(k) for k in columns} for s in report["summary"]]
    if fmt == "json":
        _common.write_json({"status": report["status"], "summary": json_ready(rows),
                            "files": {k: str(v) for k, v in paths.items()
                                      if not k.startswith("figures/")}}, provenance=prov)
    elif fmt == "csv":
        _common.write_table(rows, "csv")
    elif fmt == "md":
        _common.write_table(rows, "md")
    else:
        def f2(x: Any) -> str:
            return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"
        short = [{"rank": s["rank"], "candidate": s["candidate"],
                  "lnZ": f2(s["log_marginal_likelihood"]), "SE": f2(s["std_error"]),
                  "2lnBF": f2(s["two_ln_bf"]),
                  "evidence for the best": s["interpretation"]
                  + (" (within error)" if s.get("resolved") is False else "")}
                 for s in report["summary"]]
        _common.write_table(short, "text")
