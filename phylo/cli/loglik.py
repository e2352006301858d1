"""``phylo loglik ALIGNMENT TREEFILE --model M``: log-likelihood of each tree."""
from __future__ import annotations

import argparse
import time

from ._common import (add_device_argument, add_fasta_names_argument, add_format_argument,
                      add_threads_argument, apply_device, apply_threads, command_provenance,
                      existing_file, read_alignment_arg, write_json, write_table)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "loglik", help="log-likelihood of fixed trees (Felsenstein pruning)",
        description="Print the natural-log likelihood, summed over sites, of every tree in "
                    "TREEFILE (Newick, one per line, or NEXUS) with its own branch lengths.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  phylo loglik data/example.fasta data/candidates/true.nwk --model HKY+G4\n"
               "  phylo loglik aln.nex run1.t --model 'GTR{1,2,1,1,2}+F{0.3,0.2,0.2,0.3}+G4{0.5}' "
               "--format json\n")
    p.add_argument("alignment", type=existing_file, help="FASTA, NEXUS or PHYLIP alignment")
    p.add_argument("trees", type=existing_file, help="tree file (Newick or NEXUS)")
    p.add_argument("--model", default="JC",
                   help="substitution model in IQ-TREE syntax, e.g. 'GTR+F+G4{0.5}' "
                        "(default: %(default)s)")
    add_fasta_names_argument(p)
    add_format_argument(p)
    add_threads_argument(p)
    add_device_argument(p)
    p.set_defaults(func=run)


def _read_trees(path: str, taxa):
    from ..io.trees import read_trees
    yield from read_trees(path, taxa=taxa)


def _cuda_values(aln, trees, model, rows: list) -> list[float]:
    """ln L of every tree on the GPU: one launch per tree shape (rooted, unrooted),
    each batch item running its own topology; fills ``rows``."""
    from ..likelihood.topologies import log_likelihood_topologies
    values = [0.0] * len(trees)
    for nb in sorted({t.n_branches for t in trees}):
        idx = [i for i, t in enumerate(trees) if t.n_branches == nb]
        got = log_likelihood_topologies(aln, [trees[i] for i in idx], model, device="cuda")
        for i, v in zip(idx, got):
            values[i] = float(v)
    rows.extend({"tree": i, "name": t.name or "", "log_likelihood": v}
                for i, (t, v) in enumerate(zip(trees, values), 1))
    return values


def run(args: argparse.Namespace) -> int:
    from ..likelihood import TreeLikelihood
    from ..models import Model
    from ..errors import TreeError
    apply_threads(args)
    device = apply_device(args)
    model = Model.from_string(args.model)
    aln = read_alignment_arg(args)
    model = model.with_empirical_frequencies(aln)
    values = []
    rows = []
    t0 = time.perf_counter()
    if device == "cuda":
        values = _cuda_values(aln, list(_read_trees(args.trees, aln.taxa)), model, rows)
    else:
        for i, tree in enumerate(_read_trees(args.trees, aln.taxa), 1):
            value = TreeLikelihood(aln, tree, model).log_likelihood()
            values.append(value)
            rows.append({"tree": i, "name": tree.name or "", "log_likelihood": value})
    if not values:
        raise TreeError("no trees in the file", path=args.trees)
    if args.format == "json":
        write_json({"log_likelihood": values, "model": model.to_string(),
                    "alignment": args.alignment, "trees": args.trees,
                    "n_sites": aln.n_sites, "n_patterns": aln.n_patterns,
                    "wall_s": time.perf_counter() - t0},
                   provenance=command_provenance(args, files=[args.alignment, args.trees]))
    elif args.format == "text":
        for row in rows:
            print(f"{row['log_likelihood']:.10f}")
    else:
        for row in rows:
            row["log_likelihood"] = f"{row['log_likelihood']:.10f}"
        write_table(rows, args.format)
    return 0
