"""``phylo sbn``: subsplit Bayesian networks on tree samples (fit, prob, sample, map, kl)."""
from __future__ import annotations

import argparse
import sys

from ..errors import PhyloError
from ._common import (add_format_argument, add_quiet_argument, add_seed_argument,
                      burnin_value, check_output_path, command_provenance, nonnegative_float,
                      nonnegative_int, positive_float, positive_int, require_file,
                      show_progress, write_json,
                      write_table)

EPILOG = """\
examples:
  phylo sbn fit DS1.run1.t DS1.run2.t --burnin 0.25 --method em --out ds1.sbn.json
  phylo sbn fit DS1.trprobs --method em-alpha --alpha 1e-4 --out ds1.sbn.json
  phylo sbn prob ds1.sbn.json query.trees --format json
  phylo sbn sample ds1.sbn.json -n 1000 --seed 1 > draws.nwk
  phylo sbn map ds1.sbn.json
  phylo sbn kl ds1.sbn.json --reference golden.trprobs --eps machine --format json
"""


def _add_tree_input(p, name="trees", help_text="tree files (NEXUS/Newick, gzip allowed)"):
    p.add_argument(name, nargs="+", metavar="TREEFILE", help=help_text)
    p.add_argument("--burnin", type=burnin_value, default=0,
                   help="fraction in [0, 1) or number of trees dropped from each file "
                        "(default: 0)")
    p.add_argument("--thin", type=positive_int, default=1, help="keep every THIN-th tree")
    p.add_argument("--unweighted", action="store_true",
                   help="ignore [&W w] tree weights (count every tree once)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sbn", help="subsplit Bayesian networks: tree probabilities from tree samples",
        description="Fit subsplit Bayesian networks (Zhang & Matsen 2018) or the SRF/CCD "
                    "baselines to MrBayes/BEAST tree samples, and query them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sbn_command", metavar="SUBCOMMAND")

    f = sub.add_parser("fit", help="fit an estimator and save it as JSON",
                       description="Fit srf, ccd, sa, em, em-alpha (unrooted samples) or "
                                   "rooted (rooted samples, closed form).",
                       epilog="example:\n  phylo sbn fit run1.t run2.t --burnin 0.25 --method em "
                              "--out model.json\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_tree_input(f)
    f.add_argument("--method", default="em",
                   choices=["srf", "ccd", "sa", "em", "em-alpha", "rooted"],
                   help="estimator (default: %(default)s)")
    f.add_argument("--alpha", type=nonnegative_float, default=1e-4,
                   help="em-alpha pseudo-count scale (default: %(default)g)")
    f.add_argument("--tol", type=positive_float, default=1e-5,
                   help="EM stops when the objective changes by less (default: %(default)g)")
    f.add_argument("--max-iter", type=positive_int, default=1000, help="EM iteration limit")
    f.add_argument("--min-iter", type=nonnegative_int, default=50,
                   help="EM runs at least this many iterations before the --tol test, so "
                        "that it does not stop on a plateau (default: %(default)s)")
    f.add_argument("--out", required=True, help="model JSON file to write")
    add_format_argument(f)
    add_quiet_argument(f)
    f.set_defaults(func=run_fit)

    q = sub.add_parser("prob", help="log-probabilities of the topologies in tree files",
                       description="Natural-log probability of each distinct topology.",
                       epilog="example:\n  phylo sbn prob model.json query.trees --format csv\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("model", help="model JSON from 'phylo sbn fit'")
    _add_tree_input(q)
    add_format_argument(q)
    q.set_defaults(func=run_prob)

    s = sub.add_parser("sample", help="draw topologies from a model (Newick on stdout)",
                       description="Seeded draws; one Newick tree per line, or counts.",
                       epilog="example:\n  phylo sbn sample model.json -n 100 --seed 7\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model")
    s.add_argument("-n", type=positive_int, default=100, help="number of draws (default: 100)")
    add_seed_argument(s)
    add_format_argument(s)
    s.set_defaults(func=run_sample)

    m = sub.add_parser("map", help="most probable topology",
                       description="Most probable topology and its log-probability "
                                   "(exact for rooted models, see the docs otherwise).",
                       epilog="example:\n  phylo sbn map model.json --seed 2 --format json\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("model")
    m.add_argument("--candidates", type=nonnegative_int, default=1000,
                   help="unrooted models: sampled topologies ranked beside the rooted MAP "
                        "tree's; 0 ranks that tree alone (default: %(default)s)")
    add_seed_argument(m)
    add_format_argument(m)
    m.set_defaults(func=run_map)

    k = sub.add_parser("kl", help="KL(reference || model)",
                       description="KL divergence from a reference tree distribution "
                                   "(e.g. a long 'golden' run) to the model.",
                       epilog="example:\n  phylo sbn kl model.json --reference golden.trprobs "
                              "--eps machine --format json\n",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    k.add_argument("model")
    k.add_argument("--reference", nargs="+", required=True,
                   metavar="TREEFILE", help="reference tree files (pooled)")
    k.add_argument("--burnin", type=burnin_value, default=0,
                   help="fraction in [0, 1) or number of trees dropped (default: 0)")
    k.add_argument("--eps", default=None,
                   help="clamp q at EPS ('machine' = 2.22e-16, the SBN paper's convention); "
                        "default: no clamp, inf if the model misses a reference topology")
    add_format_argument(k)
    k.set_defaults(func=run_kl)
    p.set_defaults(func=_no_sub(p))


def _no_sub(parser):
    def run(args):
        parser.print_help(sys.stderr)
        return 2
    return run


def _read(args, taxa=None):
    from ..io.trees import read_topologies
    for f in args.trees:
        require_file(f)
    return read_topologies(args.trees, burnin=args.burnin, thin=args.thin, taxa=taxa,
                           weighted=not args.unweighted)


def run_fit(args) -> int:
    import time
    from ..sbn import fit
    check_output_path(args.out, option="--out")   # before reading and fitting
    smp = _read(args)
    bar = None
    if show_progress(args) and args.method in ("em", "em-alpha"):
        from tqdm import tqdm
        bar = tqdm(total=args.max_iter, desc="EM", file=sys.stderr, leave=False)

        def progress(it, obj):
            bar.update(1)
            bar.set_postfix(objective=f"{obj:.6f}")
    else:
        progress = None
    t0 = time.perf_counter()
    model = fit(smp, args.method, alpha=args.alpha, tol=args.tol, max_iter=args.max_iter,
                min_iter=args.min_iter, progress=progress)
    secs = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    model.save(args.out)
    info = model.info
    out = {"method": model.method, "out": args.out, "n_taxa": len(smp.taxa),
           "n_trees": smp.n_trees, "n_topologies": smp.n_topologies,
           "n_iter": info.n_iter, "converged": info.converged,
           "objective": info.objective[-1] if info.objective else None,
           "fit_seconds": secs}
    if hasattr(model, "n_params"):
        out["n_params"] = model.n_params
    if args.format == "json":
        write_json(out, provenance=_provenance(args))
    else:
        write_table([out], args.format)
    return 0


def _provenance(args) -> dict:
    """The provenance record: the model file, tree files and reference files read."""
    files = [*getattr(args, "trees", []), *([args.model] if hasattr(args, "model") else []),
             *getattr(args, "reference", [])]
    return command_provenance(args, files=files)


def _load(path):
    from ..sbn import load
    require_file(path)
    return load(path)


def run_prob(args) -> int:
    model = _load(args.model)
    smp = _read(args, taxa=model.taxa)
    lp = model.log_prob(smp)
    rows = [{"topology": smp.tree(u).to_newick(lengths=False), "count": float(smp.counts[u]),
             "log_prob": float(lp[u])} for u in range(smp.n_topologies)]
    write_table(rows, args.format, provenance=_provenance(args))
    return 0


def run_sample(args) -> int:
    model = _load(args.model)
    smp = model.sample(args.n, seed=args.seed)
    if args.format == "text":
        order = smp.order()
        for u in order:
            line = smp.tree(u).to_newick(lengths=False)
            for _ in range(int(smp.counts[u])):
                print(line)
        return 0
    rows = [{"topology": smp.tree(u).to_newick(lengths=False), "count": int(smp.counts[u])}
            for u in smp.order()]
    write_table(rows, args.format, provenance=_provenance(args))
    return 0


def run_map(args) -> int:
    model = _load(args.model)
    top, lp = model.map_topology(n_candidates=args.candidates, seed=args.seed)
    out = {"topology": top.tree(0).to_newick(lengths=False), "log_prob": lp}
    if args.format == "json":
        write_json(out, provenance=_provenance(args))
    elif args.format == "text":
        print(out["topology"])
        print(f"log_prob {lp:.6f}")
    else:
        write_table([out], args.format)
    return 0


def run_kl(args) -> int:
    from ..io.trees import read_topologies
    model = _load(args.model)
    for f in args.reference:
        require_file(f)
    ref = read_topologies(args.reference, burnin=args.burnin, taxa=model.taxa)
    eps = args.eps
    if eps is not None and eps != "machine":
        try:
            eps = float(eps)
        except ValueError:
            raise PhyloError(f"--eps must be a number in (0, 1) or 'machine', got {eps!r}") from None
    res = model.kl(ref, eps=eps)
    out = res.to_dict()
    if args.format == "json":
        write_json(out, provenance=_provenance(args))
    elif args.format == "text":
        print(f"KL {res.kl:.6g}")
        print(f"unsupported reference topologies {res.n_unsupported} "
              f"(mass {res.unsupported_mass:.4g}); KL over supported {res.kl_supported:.6g}")
    else:
        write_table([out], args.format)
    return 0
