"""``phylo marginal``: the log marginal likelihood of a fixed topology.

Runs one or several registered estimators (:mod:`phylo.marginal`, Fourment et al.
2020) on the posterior of the branch lengths (and free model parameters) of the
first tree in TREEFILE, with i.i.d. Exponential branch-length priors.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import EstimatorError, PhyloError
from . import _common

EXAMPLES = """\
examples:
  # stepping stone (50 power posteriors at Beta(0.3,1) quantiles), JSON on stdout
  phylo marginal primates.nex tree.nwk --model JC --estimator stepping-stone --format json

  # MrBayes' ladder (alpha 0.4), resumable after Ctrl-C
  phylo marginal primates.nex tree.nwk --estimator stepping-stone --alpha 0.4 \\
      --checkpoint ss.ckpt

  # several estimators: a table
  phylo marginal primates.nex tree.nwk --estimator gamma-laplus harmonic-mean bridge-sampling

JSON keys: log_marginal_likelihood, std_error (null where the method gives none),
likelihood_evaluations, seconds, estimator, seed (as given), run_seed (the seed the
estimator ran with), settings (a list of such rows with several estimators). Natural log.

seeds: repeat r of an estimator runs with phylo.marginal.workflow.derive_seed(SEED,
model and topology, estimator, r) -- the convention of phylo compare, so the same
model, topology, estimator and --seed give the same number in both commands.
"""

#: Command-line options that set an estimator setting through its declared
#: ``setting_roles`` (an option an estimator has no role for is ignored for it).
SETTING_OPTIONS = ("steps", "alpha", "samples", "thin", "burnin")


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..marginal import available_estimators
    p = subparsers.add_parser(
        "marginal", help="log marginal likelihood of a fixed topology (19 estimators)",
        description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("alignment", type=_common.existing_file, help="FASTA, NEXUS or PHYLIP alignment")
    p.add_argument("treefile", type=_common.existing_file,
                   help="Newick or NEXUS file; its first tree fixes the topology")
    p.add_argument("--model", default="JC", help="substitution model, IQ-TREE syntax (default: JC)")
    p.add_argument("--estimator", nargs="+", default=["stepping-stone"], metavar="NAME",
                   help="one or more of: " + ", ".join(available_estimators()))
    p.add_argument("--steps", type=_common.positive_int, default=None, help="power posteriors of ladder estimators (default 50)")
    p.add_argument("--alpha", type=_common.positive_float, default=None,
                   help="ladder at Beta(alpha, 1) quantiles (default 0.3; MrBayes 0.4)")
    p.add_argument("--samples", type=_common.positive_int, default=None,
                   help="kept samples per power posterior, or posterior/IS draws")
    p.add_argument("--thin", type=_common.positive_int, default=None, help="generations between kept MCMC samples")
    p.add_argument("--burnin", type=_common.nonnegative_int, default=None, help="discarded samples per chain/step")
    p.add_argument("--budget", type=_common.positive_int, default=None,
                   help="likelihood evaluations to aim for (scales thinning / draws)")
    p.add_argument("--branch-prior-rate", type=_common.positive_float, default=10.0,
                   help="rate of the i.i.d. Exponential branch-length prior (default 10)")
    p.add_argument("--fixed-model", action="store_true",
                   help="keep the model's parameters fixed at the given values")
    p.add_argument("--repeats", type=_common.positive_int, default=1, help="independent runs of each estimator")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="resumable ladder runs (stepping stone, path sampling, ...): progress "
                        "is saved here after every step and reused when the same command reruns")
    _common.add_fasta_names_argument(p)
    _common.add_seed_argument(p)
    _common.add_format_argument(p)
    _common.add_quiet_argument(p)
    _common.add_threads_argument(p)
    _common.add_device_argument(p)
    p.set_defaults(func=run)


def _first_tree(path: str, taxa):
    """The first tree of the file, in the alignment's taxon order; the rest of the file
    is read too, so that a malformed file is refused whole (as every command does)."""
    from ..io.trees import read_trees
    first = None
    for tree in read_trees(path, taxa=taxa):
        if first is None:
            first = tree
    if first is None:
        raise PhyloError("no tree found", path=path)
    return first


def build_estimators(args: argparse.Namespace) -> list:
    from ..marginal import get_estimator
    out = []
    for name in args.estimator:
        est = get_estimator(name)
        changes = {est.setting_roles[option]: getattr(args, option)
                   for option in SETTING_OPTIONS
                   if getattr(args, option) is not None and option in est.setting_roles}
        if getattr(args, "device", "cpu") == "cuda":
            if "device" in est.settings():
                changes["device"] = "cuda"
            else:
                print(f"note: {est.name} evaluates one point at a time; it runs on the CPU "
                      "(--device cuda applies to estimators with batched draws)", file=sys.stderr)
        out.append(est.with_settings(**changes) if changes else est)
    return out


def run(args: argparse.Namespace) -> int:
    from ..marginal import Problem
    from ..marginal.workflow import SEED_CONVENTION, problem_identity, run_repeat
    _common.apply_threads(args)
    _common.apply_device(args)
    if args.repeats < 1:
        raise EstimatorError(f"--repeats must be ≥ 1, got {args.repeats}")
    if args.seed < 0:
        raise EstimatorError(f"--seed must be a non-negative integer, got {args.seed}")
    if not args.branch_prior_rate > 0:
        raise EstimatorError(f"--branch-prior-rate must be positive, got {args.branch_prior_rate}")
    if args.checkpoint:
        _common.check_output_path(args.checkpoint, option="--checkpoint")
    alignment = _common.read_alignment_arg(args)
    tree = _first_tree(args.treefile, alignment.taxa)
    problem = Problem(alignment, tree, args.model, branch_prior_rate=args.branch_prior_rate,
                      estimate_model=not args.fixed_model, name=tree.name or "tree")
    identity = problem_identity(problem)
    estimators = build_estimators(args)
    progress = _common.show_progress(args)
    rows = []
    single = len(estimators) == 1 and args.repeats == 1
    for est in estimators:
        for r in range(args.repeats):
            options: dict[str, Any] = {}
            if args.checkpoint and est.resumable:
                options["checkpoint"] = (args.checkpoint if single
                                         else f"{args.checkpoint}.{est.name}.{r}")
            task, res = run_repeat(problem, est, seed=args.seed, repeat=r, identity=identity,
                                   budget=args.budget, progress=progress, **options)
            rows.append({"estimator": res.estimator, "repeat": r, "seed": args.seed,
                         "run_seed": res.seed,
                         "log_marginal_likelihood": res.log_marginal_likelihood,
                         "std_error": res.std_error,
                         "likelihood_evaluations": res.likelihood_evaluations,
                         "seconds": round(res.seconds, 4)})
            if single:
                rows[-1]["settings"] = res.settings
    prov = _common.command_provenance(
        args, files=[args.alignment, args.treefile], seeds=SEED_CONVENTION,
        settings={"estimators": {e.name: e.settings() for e in estimators}})
    if single:
        row = rows[0]
        if args.format == "json":
            _common.write_json({k: row[k] for k in ("log_marginal_likelihood", "std_error",
                                                    "likelihood_evaluations", "seconds",
                                                    "estimator", "seed", "run_seed",
                                                    "settings")}, provenance=prov)
        else:
            _common.write_table([{k: v for k, v in row.items() if k not in ("settings", "repeat")}],
                                args.format)
        return 0
    _common.write_table(rows, args.format, provenance=prov)
    return 0
