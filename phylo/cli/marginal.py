"""``phylo marginal``: the log marginal likelihood of a fixed topology, or over tree space.

Runs one or several registered estimators (:mod:`phylo.marginal`, Fourment et al.
2020) on the posterior of the branch lengths (and free model parameters) of the
first tree in TREEFILE, with i.i.d. Exponential branch-length priors.

With ``--tree-sample RUN1.t [RUN2.t ...]`` (and no TREEFILE) the marginal likelihood
is integrated over unrooted topologies under a uniform topology prior
(:func:`phylo.marginal.tree_space_marginal`): posterior odds over the most frequent
topologies of the runs (``--method odds``) or SBN importance sampling (``sbn-is``).
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

  # over tree space: two MrBayes runs, 25% burn-in, posterior odds (Gamma-Laplus IS
  # on each of the most frequent topologies)
  phylo marginal data.nex --tree-sample run1.t run2.t --burnin 0.25 --model JC --format json

  # a sample made under JC used for GTR+G4: SBN importance sampling (said in the output)
  phylo marginal data.nex --tree-sample run1.t --sample-model JC --model GTR+G4

JSON keys: log_marginal_likelihood, std_error (null where the method gives none),
likelihood_evaluations, seconds, estimator, seed (as given), run_seed (the seed the
estimator ran with), settings (a list of such rows with several estimators). Natural log.

seeds: repeat r of an estimator runs with phylo.marginal.workflow.derive_seed(SEED,
model and topology, estimator, r) -- the convention of phylo compare, so the same
model, topology, estimator and --seed give the same number in both commands.

With --tree-sample, JSON keys: log_marginal_likelihood, std_error, method,
method_reason, n_topologies, posterior_mass, per_topology (list), priors, warnings,
diagnostics; the tree-space estimate takes --seed as given.
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
    p.add_argument("treefile", type=_common.existing_file, nargs="?", default=None,
                   help="Newick or NEXUS file; its first tree fixes the topology "
                        "(omit with --tree-sample)")
    p.add_argument("--tree-sample", nargs="+", type=_common.existing_file, default=None,
                   metavar="RUN", help="integrate over tree space using these runs' tree samples "
                                       "(MrBayes .t/.trprobs, BEAST .trees; one file per run)")
    p.add_argument("--method", choices=("odds", "sbn-is"), default="odds",
                   help="with --tree-sample: posterior odds over the most frequent topologies, "
                        "or SBN importance sampling (default: odds)")
    p.add_argument("--posterior", choices=("frequencies", "sbn"), default="frequencies",
                   help="with --tree-sample, odds: P(topologies | data) from sample "
                        "frequencies or from an SBN fitted to the sample")
    p.add_argument("--sample-model", default=None, metavar="MODEL",
                   help="the model the tree sample was made under; when it differs from "
                        "--model the SBN importance sampler is used")
    p.add_argument("--max-topologies", type=int, default=None,
                   help="with --tree-sample, odds: at most this many topologies (default 40)")
    p.add_argument("--target-mass", type=float, default=None,
                   help="with --tree-sample, odds: stop adding topologies at this posterior "
                        "mass (default 0.95)")
    p.add_argument("--draws", type=int, default=None,
                   help="with --tree-sample, sbn-is: topologies drawn from the SBN (default 1000)")
    p.add_argument("--model", default="JC", help="substitution model, IQ-TREE syntax (default: JC)")
    p.add_argument("--estimator", nargs="+", default=None, metavar="NAME",
                   help="one or more of: " + ", ".join(available_estimators())
                        + " (default: stepping-stone; with --tree-sample one inner estimator, "
                          "default gamma-laplus-is)")
    p.add_argument("--steps", type=_common.positive_int, default=None, help="power posteriors of ladder estimators (default 50)")
    p.add_argument("--alpha", type=_common.positive_float, default=None,
                   help="ladder at Beta(alpha, 1) quantiles (default 0.3; MrBayes 0.4)")
    p.add_argument("--samples", type=_common.positive_int, default=None,
                   help="kept samples per power posterior, or posterior/IS draws")
    p.add_argument("--thin", type=_common.positive_int, default=None, help="generations between kept MCMC samples")
    p.add_argument("--burnin", type=_burnin_value, default=None,
                   help="discarded samples per chain/step; with --tree-sample: burn-in of "
                        "each run, a fraction (default 0.25) or a number of trees")
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


def _burnin_value(text: str) -> float | int:
    """argparse ``type=``: a non-negative number of samples, or a fraction in [0, 1)."""
    try:
        value: float | int = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not 0.0 <= value < 1.0:
            raise argparse.ArgumentTypeError(f"a fractional burn-in must be in [0, 1), got {text}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


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
    if args.tree_sample is not None:
        if args.treefile is not None:
            raise PhyloError("give either a TREEFILE (fixed topology) or --tree-sample, not both")
        return run_tree_space(args)
    if args.treefile is None:
        raise PhyloError("give a TREEFILE (fixed topology) or --tree-sample RUN ...")
    args.estimator = args.estimator or ["stepping-stone"]
    if args.burnin is not None and not isinstance(args.burnin, int):
        raise EstimatorError(f"--burnin must be a number of samples here, got {args.burnin}")
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
            for warning in res.diagnostics.get("warnings", []):
                print(f"phylo marginal: warning: {res.estimator}: {warning}", file=sys.stderr)
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


def run_tree_space(args: argparse.Namespace) -> int:
    """``--tree-sample``: the marginal likelihood over tree space (one estimate)."""
    from ..marginal.tree_space import (DEFAULT_ESTIMATOR, DEFAULT_IS_DRAWS, DEFAULT_MAX_TOPOLOGIES,
                                       DEFAULT_TARGET_MASS, tree_space_marginal)
    if args.repeats != 1 or args.checkpoint:
        raise EstimatorError("--repeats and --checkpoint are for fixed-topology runs, not --tree-sample")
    names = args.estimator or [DEFAULT_ESTIMATOR]
    if len(names) != 1:
        raise EstimatorError("--tree-sample takes one inner --estimator")
    args.estimator = names
    inner = build_estimators(argparse.Namespace(**{**vars(args), "burnin": None}))[0]
    alignment = _common.read_alignment_arg(args)
    res = tree_space_marginal(
        alignment, args.tree_sample, args.model, estimator=inner, method=args.method,
        seed=args.seed, burnin=0.25 if args.burnin is None else args.burnin,
        posterior=args.posterior, sample_model=args.sample_model,
        max_topologies=args.max_topologies or DEFAULT_MAX_TOPOLOGIES,
        target_mass=args.target_mass or DEFAULT_TARGET_MASS,
        n_draws=args.draws or DEFAULT_IS_DRAWS, branch_prior_rate=args.branch_prior_rate,
        progress=_common.show_progress(args))
    d = res.diagnostics
    out = {"log_marginal_likelihood": res.log_marginal_likelihood, "std_error": res.std_error,
           "method": d["method"], "method_reason": d["method_reason"],
           "n_topologies": d["n_topologies"], "posterior_mass": d.get("posterior_mass"),
           "per_topology": [row.to_dict() for row in res.per_topology],
           "priors": d["priors"], "warnings": d["warnings"], "model": d["model"],
           "inner_estimator": d["inner_estimator"], "seed": res.seed,
           "likelihood_evaluations": res.likelihood_evaluations, "seconds": res.seconds,
           "diagnostics": {k: v for k, v in d.items()
                           if k not in ("priors", "warnings", "method", "method_reason",
                                        "n_topologies", "posterior_mass", "model")}}
    if args.format == "json":
        _common.write_json(out)
        return 0
    if args.format in ("csv", "md"):
        _common.write_table([{k: v for k, v in row.to_dict().items()} for row in res.per_topology],
                            args.format)
        return 0
    print(format_tree_space(res))
    return 0


def format_tree_space(res) -> str:
    """A plain-text summary of a tree-space result: estimate, how, priors, topologies."""
    d = res.diagnostics
    se = "n/a" if res.std_error is None else f"{res.std_error:.3f}"
    lines = [f"log marginal likelihood over tree space: {res.log_marginal_likelihood:.3f} "
             f"(std error {se})",
             f"model {d['model']}; method {d['method']} ({d['method_reason']}); inner estimator "
             f"{d['inner_estimator']}; {d['n_topologies']} topologies; {res.seconds:.1f} s"]
    if d["method"] == "odds":
        lines.append(f"posterior mass of the topologies used: {d['posterior_mass']:.4f} "
                     f"+- {d['posterior_mass_se']:.4f} ({d['posterior_mass_error_method']}); "
                     f"per-topology implied log Z spread {d['implied_spread']:.3f} nats")
    else:
        lines.append(f"importance sampling: {d['n_draws']} draws, ESS {d['ess']:.1f}, "
                     f"Pareto k-hat {d['pareto_k']:.2f}")
    lines.append("priors: " + "; ".join(f"{k}: {v}" for k, v in d["priors"].items()))
    for w in d["warnings"]:
        lines.append("WARNING: " + w)
    lines.append("topologies that carried the estimate (share, P(tau|D), log Z_tau, implied log Z):")
    for i, row in enumerate(res.per_topology[:20]):
        post = "-" if row.posterior is None else f"{row.posterior:.4f}"
        imp = "-" if row.implied_log_z is None else f"{row.implied_log_z:.3f}"
        lines.append(f"  {i + 1:3d}  {row.share:.4f}  {post}  {row.log_z:.3f}  {imp}  {row.newick}")
    if len(res.per_topology) > 20:
        lines.append(f"  ... {len(res.per_topology) - 20} more (--format json lists all)")
    return "\n".join(lines)
