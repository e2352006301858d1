"""``phylo asdsf``: average standard deviation of split frequencies across runs."""
from __future__ import annotations

import argparse

from ._common import (add_format_argument, add_threads_argument, burnin_value,
                      command_provenance, positive_int, probability, require_file, write_json,
                      write_table)

EPILOG = """\
example:
  phylo asdsf primates.run1.t.gz primates.run2.t.gz --burnin 0.25 --minpartfreq 0.1
  phylo asdsf run1.t run2.t run3.t --format json      # keys: asdsf, max_sdsf, n_splits

MrBayes' convention (sumt/mcmc): burn-in per file (a fraction drops int(b*n) of the n
trees, generation 0 counted; an integer drops that many trees); splits with frequency
>= minpartfreq in at least one run; sample SD (n-1) across runs; mean over splits.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "asdsf", help="ASDSF convergence diagnostic of two or more MCMC runs",
        description="Average (and maximum) standard deviation of split frequencies "
                    "between the tree samples of independent runs, as MrBayes reports it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="tree files, one per run (NEXUS/Newick, gzip allowed)")
    p.add_argument("--burnin", type=burnin_value, default=0.25,
                   help="fraction in [0, 1) or number of trees dropped from each file "
                        "(default: %(default)s)")
    p.add_argument("--minpartfreq", type=probability, default=0.10,
                   help="minimum split frequency in at least one run (default: %(default)s)")
    p.add_argument("--thin", type=positive_int, default=1, help="keep every THIN-th tree")
    add_threads_argument(p)
    add_format_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..diagnostics.asdsf import asdsf
    from ..errors import PhyloError
    for f in args.runs:
        require_file(f)
    if len(args.runs) < 2:
        raise PhyloError("ASDSF needs at least two runs (tree files)")
    res = asdsf(args.runs, burnin=args.burnin, minpartfreq=args.minpartfreq, thin=args.thin,
                threads=args.threads)
    out = res.to_dict()
    out["files"] = list(args.runs)
    out["burnin"] = args.burnin
    if args.format == "json":
        write_json(out, provenance=command_provenance(args, files=args.runs))
    elif args.format == "text":
        print(f"ASDSF    {res.asdsf:.6f}")
        print(f"max SDSF {res.max_sdsf:.6f}")
        print(f"splits   {res.n_splits} (minpartfreq {res.minpartfreq:g}, {res.n_runs} runs, "
              f"{' / '.join(f'{n:g}' for n in res.n_samples)} trees after burn-in)")
    else:
        write_table([{"asdsf": res.asdsf, "max_sdsf": res.max_sdsf, "n_splits": res.n_splits,
                      "minpartfreq": res.minpartfreq, "n_runs": res.n_runs}], args.format)
    return 0
