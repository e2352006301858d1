"""``phylo compare``: rank candidate models × topologies by marginal likelihood.

Candidates are every pair of a substitution model (``--models``) and a topology
(``--trees``/``--tree``; without one, the neighbour-joining tree of the alignment's
Jukes–Cantor distances, :func:`phylo.trees.nj.nj_tree`, and the report says so).
Each candidate's log marginal likelihood is estimated by one registered estimator
(``--estimator``, stepping stone by default) ``--repeats`` times, through
:mod:`phylo.marginal`; :mod:`phylo.report` turns the rows into an HTML page, a
Markdown file, JSON and CSV with log Bayes factors against the best candidate and
their Kass–Raftery reading.

Checkpointing: after each candidate its rows go to ``OUT/checkpoint/`` (and a
ladder estimator checkpoints every rung there too); ``--resume`` reuses what a
previous run of the *same* command finished. On Ctrl-C the finished candidates are
written as a partial report, and the exit status is 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import CheckpointError, EstimatorError, PhyloError, TreeError
from . import _common

DEFAULT_MODELS = ("JC69", "HKY+G4")
DEFAULT_ESTIMATOR = "stepping-stone"
DEFAULT_OUT = "compare-report"
#: Quick defaults for the stepping-stone family so that the example data finishes in
#: well under two minutes on two cores; the report states them, raise them for a paper.
QUICK_LADDER_STEPS = 16
QUICK_SAMPLES_PER_STEP = 200
CHECKPOINT_FORMAT = 1

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
                        "constraint (repeatable)")
    p.add_argument("--estimator", default=DEFAULT_ESTIMATOR,
                   help="marginal-likelihood estimator by its registered name "
                        "(default: %(default)s; `phylo marginal --help` lists them)")
    p.add_argument("--steps", type=int, default=None,
                   help="ladder steps of stepping-stone/path-sampling estimators "
                        f"(default for compare: {QUICK_LADDER_STEPS})")
    p.add_argument("--samples", type=int, default=None,
                   help="MCMC samples per ladder step, or samples of a sampling "
                        f"estimator (default for compare: {QUICK_SAMPLES_PER_STEP} per step)")
    p.add_argument("--burnin", type=int, default=None,
                   help="discarded samples per chain or ladder step (estimator default)")
    p.add_argument("--thin", type=int, default=None,
                   help="generations between kept MCMC samples (estimator default: the "
                        "number of parameters)")
    p.add_argument("--alpha", type=float, default=None,
                   help="ladder at Beta(alpha, 1) quantiles (estimator default 0.3; "
                        "MrBayes uses 0.4)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   dest="estimator_settings",
                   help="any other estimator setting, e.g. --set alpha=0.4 (repeatable)")
    p.add_argument("--repeats", type=int, default=1,
                   help="independent repeats per candidate; with 2 or more the error is "
                        "the between-repeat standard error (default: %(default)s)")
    _common.add_fasta_names_argument(p)
    _common.add_seed_argument(p)
    _common.add_threads_argument(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="folder for the report and the checkpoint (default: %(default)s)")
    _common.add_format_argument(p)
    p.add_argument("--resume", action="store_true",
                   help="reuse the candidates a previous run of the same command "
                        "finished (from DIR/checkpoint)")
    p.add_argument("--title", default="Model comparison by marginal likelihood",
                   help="title of the report")
    _common.add_quiet_argument(p)
    p.set_defaults(func=run)


# -- library adapter ----------------------------------------------------------------
def _marginal():
    from .. import marginal
    return marginal


def base_estimator(name: str):
    """The registered estimator ``name`` with its default settings (an
    :class:`~phylo.errors.EstimatorError` lists the valid names otherwise)."""
    return _marginal().get_estimator(name)


def make_estimator(name: str, settings: dict[str, Any]):
    """The estimator ``name`` with ``settings`` (EstimatorError on a wrong name/setting)."""
    return _marginal().get_estimator(name, **settings)


def estimator_settings(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """Settings for the estimator from ``--steps``/``--samples``/``--set``, and notes.

    Ladder estimators get compare's quick defaults (:data:`QUICK_LADDER_STEPS`,
    :data:`QUICK_SAMPLES_PER_STEP`) unless the user gives values.
    """
    base = base_estimator(name)
    fields = {f.name: f for f in dataclasses.fields(base)} if dataclasses.is_dataclass(base) \
        else {}
    settings: dict[str, Any] = {}
    notes: list[str] = []
    steps_field = next((f for f in ("n_steps", "steps", "n_ladder_steps") if f in fields), None)
    samples_field = next((f for f in ("samples_per_step", "n_samples", "samples")
                          if f in fields), None)
    if args.steps is not None:
        if steps_field is None:
            raise EstimatorError(f"{name} has no ladder: --steps does not apply")
        if args.steps < 1:
            raise EstimatorError(f"--steps must be at least 1, got {args.steps}")
        settings[steps_field] = args.steps
    elif steps_field is not None and getattr(base, steps_field) > QUICK_LADDER_STEPS:
        settings[steps_field] = QUICK_LADDER_STEPS
        notes.append(f"Quick settings: {QUICK_LADDER_STEPS} ladder steps (the estimator's "
                     f"default is {getattr(base, steps_field)}); raise with --steps.")
    if args.samples is not None:
        if samples_field is None:
            raise EstimatorError(f"{name} takes no sample size: --samples does not apply")
        if args.samples < 1:
            raise EstimatorError(f"--samples must be at least 1, got {args.samples}")
        settings[samples_field] = args.samples
    elif (steps_field is not None and samples_field == "samples_per_step"
          and getattr(base, samples_field) > QUICK_SAMPLES_PER_STEP):
        settings[samples_field] = QUICK_SAMPLES_PER_STEP
        notes.append(f"Quick settings: {QUICK_SAMPLES_PER_STEP} samples per step (the "
                     f"estimator's default is {getattr(base, samples_field)}); raise with "
                     "--samples.")
    for flag in ("burnin", "thin", "alpha"):
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag not in fields:
            raise EstimatorError(f"{name} has no setting {flag!r}: --{flag} does not apply")
        if value < 0 or (flag != "burnin" and value == 0):
            raise EstimatorError(f"--{flag} must be positive, got {value}")
        settings[flag] = value
    for item in args.estimator_settings:
        if "=" not in item:
            raise EstimatorError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in fields:
            raise EstimatorError(f"{name}: unknown setting {key!r}; valid: "
                                 f"{', '.join(fields) or 'none'}")
        settings[key] = _coerce(value, getattr(base, key), key)
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


def make_problem(alignment, tree, model):
    """The fixed-topology posterior of one candidate (library defaults for priors)."""
    return _marginal().Problem(alignment, tree, model)


def run_candidate(problem, estimator, *, repeats: int, seed: int, name: str,
                  checkpoint_dir: Path | None = None,
                  progress: bool = False) -> tuple[list[dict], dict[str, Any]]:
    """Estimate one candidate ``repeats`` times; the tidy rows and first-repeat diagnostics.

    Repeat ``r`` runs ``estimator.run(problem, seed=run_seed(seed, name, estimator.name,
    r))`` with :func:`phylo.marginal.compare.run_seed`, exactly as
    ``phylo.marginal.compare({name: problem}, [estimator], repeats=R, seed=seed)`` does:
    a candidate's numbers do not depend on which other candidates run, or in which
    order, and a resumed run reproduces an uninterrupted one. Ladder estimators also
    checkpoint every rung to ``checkpoint_dir``.
    """
    from ..marginal.compare import run_seed
    rows: list[dict] = []
    diagnostics: dict[str, Any] = {}
    for r in range(repeats):
        s = run_seed(seed, name, estimator.name, r)
        options: dict[str, Any] = {}
        if checkpoint_dir is not None and _takes_checkpoint(estimator):
            options["checkpoint"] = checkpoint_dir / f"{_slug(name)}.rep{r}.npz"
        result = estimator.run(problem, seed=s, progress=progress, **options)
        se = result.std_error
        rows.append({"problem": name, "estimator": result.estimator, "repeat": r, "seed": s,
                     "log_marginal_likelihood": float(result.log_marginal_likelihood),
                     "std_error": math.nan if se is None else float(se),
                     "likelihood_evaluations": int(result.likelihood_evaluations),
                     "seconds": float(result.seconds)})
        if r == 0:
            d = result.diagnostics or {}
            diagnostics = {k: _plain(d[k]) for k in
                           ("ladder_betas", "ladder_contributions", "loglik_trace",
                            "ess", "acceptance") if k in d and d[k] is not None}
        if options.get("checkpoint") is not None:   # the rung file is no longer needed
            Path(options["checkpoint"]).unlink(missing_ok=True)
    return rows, diagnostics


def _takes_checkpoint(estimator) -> bool:
    """Whether the estimator's hook accepts ``checkpoint=PATH`` (ladder estimators)."""
    import inspect
    hook = getattr(estimator, "_estimate", None)
    try:
        return hook is not None and "checkpoint" in inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


# -- candidates ---------------------------------------------------------------------
@dataclasses.dataclass
class Candidate:
    """One model × topology pair; ``name`` is ``"<model> on <topology>"``."""

    name: str
    model_text: str
    model: Any
    tree_name: str
    tree: Any
    tree_source: str


def read_candidate_trees(paths: Sequence[str], taxa: Sequence[str]) -> list[tuple[str, Any, str]]:
    """``[(name, tree, source)]``: every tree of every file, leaves in ``taxa`` order.

    The name is the file's stem (``nni1.nwk`` → ``nni1``), with ``#k`` appended when
    a file holds several trees; duplicate stems get their folder prepended.
    """
    from ..io.trees import read_trees
    out: list[tuple[str, Any, str]] = []
    stems = [Path(p).name.split(".")[0] for p in paths]
    for path, stem in zip(paths, stems):
        _common.require_file(path)
        name = stem if stems.count(stem) == 1 else f"{Path(path).parent.name}/{stem}"
        trees = list(read_trees(path, taxa=taxa))
        if not trees:
            raise TreeError("no tree in the file", path=path)
        for k, tree in enumerate(trees, 1):
            tree = tree.unrooted() if tree.rooted else tree
            if not tree.is_binary():
                raise TreeError("the tree is not binary (a polytomy); compare needs binary "
                                "topologies", path=path)
            label = name if len(trees) == 1 else f"{name}#{k}"
            out.append((label, tree, f"{path}" + ("" if len(trees) == 1 else f" (tree {k})")))
    return out


def _read_constraint(text: str):
    """A constraint topology from a Newick string or a file holding one."""
    from ..io.newick import parse_newick
    if "(" not in text:
        from ..io._compressed import read_text
        source, text = text, read_text(text, what="constraint tree file")
    else:
        source = "--constraint"
    return parse_newick(text.strip(), source=source)


def build_candidates(args: argparse.Namespace, alignment) -> tuple[list[Candidate], list[str]]:
    """Parse models and trees into the candidate list (models outer, trees inner)."""
    from ..models import Model
    notes: list[str] = []
    model_texts = list(args.models or DEFAULT_MODELS)
    if len(set(model_texts)) != len(model_texts):
        raise PhyloError("--models lists a model twice")
    models = [(text, Model.from_string(text)) for text in model_texts]
    tree_paths = list(args.trees) + list(args.tree)
    constraints = list(getattr(args, "constraint", []) or [])
    trees = read_candidate_trees(tree_paths, alignment.taxa) if tree_paths else []
    if constraints:
        from ..trees.nj import nj_tree
        for k, text in enumerate(constraints, 1):
            constraint = _read_constraint(text)
            trees.append((f"constraint{k}", nj_tree(alignment, constraint=constraint),
                          f"neighbour joining under the constraint {constraint.to_newick(lengths=False)}"))
        notes.append("Constraint candidates are the neighbour-joining trees (JC distances, "
                     "Saitou & Nei 1987) that contain every split of their constraint.")
    if not trees:
        from ..trees.nj import nj_tree
        trees = [("nj", nj_tree(alignment), "neighbour joining of JC distances")]
        notes.append("No topology was given: every model was evaluated on the "
                     "neighbour-joining tree of the Jukes–Cantor distances (Saitou & Nei "
                     "1987), a starting topology, not an inferred best tree. Give "
                     "--trees to compare topologies.")
    candidates = []
    for text, model in models:
        for tname, tree, source in trees:
            candidates.append(Candidate(f"{text} on {tname}", text, model, tname, tree, source))
    return candidates, notes


# -- checkpoint ------------------------------------------------------------------------
def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_") or "candidate"


def _fingerprint(args, alignment_sha: str, candidates: Sequence[Candidate],
                 estimator_name: str, settings: dict) -> dict[str, Any]:
    from .._version import __version__
    return {
        "format": CHECKPOINT_FORMAT, "phylo_version": __version__,
        "alignment_sha256": alignment_sha,
        "candidates": [{"name": c.name, "model": c.model.to_string(),
                        "tree": c.tree.to_newick(lengths=False)} for c in candidates],
        "estimator": estimator_name, "settings": settings,
        "repeats": args.repeats, "seed": args.seed,
    }


class Checkpoint:
    """``OUT/checkpoint/``: ``run.json`` (the run's fingerprint) and one
    ``<candidate>.json`` per finished candidate (rows and diagnostics), each written
    atomically as soon as the candidate finishes."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any]) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def start(self, resume: bool) -> dict[str, tuple[list[dict], dict]]:
        """Open the checkpoint; with ``resume``, return the finished candidates."""
        run_file = self.folder / "run.json"
        if resume and run_file.exists():
            try:
                saved = json.loads(run_file.read_text())
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"cannot read checkpoint ({exc})", path=run_file) from None
            if saved != json.loads(json.dumps(self.fingerprint)):
                diff = [k for k in self.fingerprint if saved.get(k) != json.loads(
                    json.dumps(self.fingerprint[k]))]
                raise CheckpointError(
                    "--resume: the checkpoint belongs to a different run (differs in: "
                    f"{', '.join(diff) or 'format'}); rerun without --resume to start over",
                    path=run_file)
            done = {}
            for c in self.fingerprint["candidates"]:
                f = self.folder / f"{_slug(c['name'])}.json"
                if f.exists():
                    try:
                        data = json.loads(f.read_text())
                    except ValueError:
                        continue  # a torn file: recompute that candidate
                    done[c["name"]] = (data["rows"], data.get("diagnostics", {}))
            return done
        if self.folder.exists():  # a fresh start: drop stale results
            for f in self.folder.iterdir():
                if f.is_file() and (f.suffix in (".json", ".npz", ".tmp")):
                    f.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_json(run_file, self.fingerprint)
        return {}

    def save(self, name: str, rows: list[dict], diagnostics: dict) -> None:
        _atomic_json(self.folder / f"{_slug(name)}.json",
                     {"rows": rows, "diagnostics": diagnostics})


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, default=_common._json_default))
    os.replace(tmp, path)


# -- the command --------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from ..report import build_report, provenance, write_report
    from ..report.render import CSV_COLUMNS, sha256_file

    if args.repeats < 1:
        raise PhyloError(f"--repeats must be at least 1, got {args.repeats}")
    if args.seed < 0:
        raise PhyloError(f"--seed must be a non-negative integer, got {args.seed}")
    _common.apply_threads(args)
    _common.require_file(args.alignment)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PhyloError("--out must be a folder, but a file has that name", path=out)
    alignment = _common.read_alignment_arg(args)
    candidates, notes = build_candidates(args, alignment)
    estimator_name = base_estimator(args.estimator).name   # canonical spelling
    settings, setting_notes = estimator_settings(estimator_name, args)
    estimator = make_estimator(estimator_name, settings)
    notes = setting_notes + notes
    full_settings = dict(getattr(estimator, "settings", lambda: settings)())
    fingerprint = _fingerprint(args, sha256_file(args.alignment), candidates,
                               estimator_name, full_settings)
    checkpoint = Checkpoint(out / "checkpoint", fingerprint)
    done = checkpoint.start(args.resume)
    quiet = args.quiet
    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    if args.resume:
        log(f"phylo compare: resuming; {len(done)} of {len(candidates)} candidates "
            "already finished")

    report_settings = {
        "estimator": estimator_name, **{f"estimator.{k}": v for k, v in full_settings.items()},
        "repeats": args.repeats, "seed": args.seed,
        "seeds": "repeat r of candidate c uses phylo.marginal.compare.run_seed("
                 f"{args.seed}, c, estimator, r)",
        "models": " ".join(c for c in dict.fromkeys(c.model_text for c in candidates)),
        "topologies": " ".join(dict.fromkeys(c.tree_name for c in candidates)),
        "alignment": f"{args.alignment} ({alignment.n_taxa} taxa, {alignment.n_sites} sites, "
                     f"{alignment.n_patterns} patterns)",
        "threads": args.threads if args.threads is not None else "all cores",
        "priors": "library defaults of phylo.marginal.Problem (branch lengths Exp(10))",
    }
    cand_info = [{"name": c.name, "model": _model_label(c),
                  "tree": c.tree.to_newick(lengths=False), "tree_source": c.tree_source}
                 for c in candidates]
    prov = provenance(command_line=canonical_command(args), files=[args.alignment] + [
        p for p in dict.fromkeys(list(args.trees) + list(args.tree))], seed=args.seed)
    if _invoked_as_cli():
        prov["argv"] = ["phylo", *sys.argv[1:]]

    results: dict[str, tuple[list[dict], dict]] = dict(done)
    started = time.perf_counter()

    def write(final: bool) -> dict[str, Path]:
        rows = [row for c in candidates if c.name in results for row in results[c.name][0]]
        diagnostics = {c.name: results[c.name][1] for c in candidates if c.name in results}
        prov["total_seconds_this_run"] = round(time.perf_counter() - started, 2)
        report = build_report(rows, candidates=cand_info, diagnostics=diagnostics,
                              settings=report_settings, provenance=prov, notes=notes,
                              expected=[c.name for c in candidates], title=args.title)
        paths = write_report(report, out)
        if final:
            _print_summary(report, paths, args.format, CSV_COLUMNS)
        return paths

    bar = None
    if _common.show_progress(args):
        from tqdm import tqdm
        bar = tqdm(total=len(candidates), initial=len(done), unit="candidate",
                   desc="phylo compare", file=sys.stderr)
    try:
        for k, cand in enumerate(candidates, 1):
            if cand.name in results:
                continue
            if bar is not None:
                bar.set_postfix_str(cand.name)
            problem = make_problem(alignment, cand.tree, cand.model)
            rows, diag = run_candidate(problem, estimator, repeats=args.repeats,
                                       seed=args.seed, name=cand.name,
                                       checkpoint_dir=out / "checkpoint")
            results[cand.name] = (rows, diag)
            checkpoint.save(cand.name, rows, diag)
            mean = sum(r["log_marginal_likelihood"] for r in rows) / len(rows)
            msg = (f"[{k}/{len(candidates)}] {cand.name}: ln Z = {mean:.2f} "
                   f"({sum(r['seconds'] for r in rows):.1f} s)")
            if bar is not None:
                bar.update(1)
                bar.write(msg)
            else:
                log(msg)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if results:
            paths = write(final=False)
            print(f"phylo compare: interrupted; wrote a partial report of {len(results)} of "
                  f"{len(candidates)} candidates to {paths['html']}; rerun the same command "
                  "with --resume to finish", file=sys.stderr)
        else:
            print("phylo compare: interrupted before any candidate finished; rerun with "
                  "--resume to continue", file=sys.stderr)
        raise
    if bar is not None:
        bar.close()
    paths = write(final=True)
    log(f"phylo compare: report written to {paths['html']}")
    return 0


def _model_label(c: Candidate) -> str:
    """The model as given, with the parameters integrated over their priors."""
    free = tuple(c.model.free_parameters())
    return c.model_text + (f" (integrated over: {', '.join(free)})" if free else "")


def canonical_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, every setting spelled out."""
    import shlex
    parts = ["phylo", "compare", args.alignment, "--models", *(args.models or DEFAULT_MODELS)]
    trees = list(args.trees) + list(args.tree)
    if trees:
        parts += ["--trees", *trees]
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
    return " ".join(shlex.quote(str(p)) for p in parts)


def _invoked_as_cli() -> bool:
    """True when running as the ``phylo`` program (not main() called in-process)."""
    return Path(sys.argv[0]).name in ("phylo", "__main__.py", "-m")


def _print_summary(report: dict, paths: dict, fmt: str, columns: Sequence[str]) -> None:
    rows = [{k: s.get(k) for k in columns} for s in report["summary"]]
    if fmt == "json":
        _common.write_json({"status": report["status"], "summary": _nan_to_none(rows),
                            "files": {k: str(v) for k, v in paths.items()
                                      if not k.startswith("figures/")}})
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


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
