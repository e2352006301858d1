"""``phylo simulate TREEFILE --model M --sites N --seed S --out ALN.fasta``."""
from __future__ import annotations

import argparse

from ._common import add_seed_argument, check_output_path, existing_file, positive_int, \
    write_output


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate an alignment along a tree",
        description="Simulate DNA sites along the first tree of TREEFILE (or a random "
                    "tree) under a substitution model; write FASTA, PHYLIP or NEXUS.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  phylo simulate data/example_true_tree.nwk --model 'HKY{4}+F{0.3,0.2,0.2,0.3}+G4{0.5}' \\\n"
               "      --sites 1000 --seed 7 --out sim.fasta\n"
               "  phylo simulate --random-tree 20 --model JC --sites 500 --tree-out true.nwk "
               "--format phylip > sim.phy\n")
    p.add_argument("tree", nargs="?", type=existing_file, help="tree file (Newick or NEXUS)")
    p.add_argument("--random-tree", type=positive_int, metavar="N_TAXA", default=None,
                   help="simulate on a uniform random unrooted tree with N_TAXA taxa "
                        "(Exp(10) branch lengths) instead of TREEFILE")
    p.add_argument("--model", default="JC", help="model in IQ-TREE syntax with explicit "
                   "frequencies (default: %(default)s)")
    p.add_argument("--sites", type=positive_int, required=True, help="number of sites")
    p.add_argument("--out", default="-", help="output FASTA (default: stdout)")
    p.add_argument("--tree-out", default=None, help="also write the (random) tree as Newick")
    p.add_argument("--provenance", default=None, metavar="FILE",
                   help="also write the provenance record (versions, input sha256, "
                        "settings, seed, host) as JSON to FILE")
    p.add_argument("--format", choices=("fasta", "phylip", "nexus"), default="fasta",
                   help="alignment format written (default: %(default)s)")
    add_seed_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import PhyloError
    from ..likelihood.simulate import simulate_alignment
    from ..trees.random import random_tree
    from .loglik import _read_trees
    if (args.tree is None) == (args.random_tree is None):
        raise PhyloError("give either TREEFILE or --random-tree N_TAXA")
    check_output_path(args.out, option="--out")
    if args.provenance:
        check_output_path(args.provenance, option="--provenance")
    if args.tree_out:
        check_output_path(args.tree_out, option="--tree-out")
    rng = np.random.default_rng(args.seed)
    if args.random_tree is not None:
        tree = random_tree(args.random_tree, rng=rng)
    else:
        tree = next(iter(_read_trees(args.tree, None)), None)
        if tree is None:
            raise PhyloError("no trees in the file", path=args.tree)
    aln = simulate_alignment(tree, args.model, args.sites, rng=rng)
    write_output(args.out, aln.to_text(args.format), option="--out")
    if args.tree_out:
        write_output(args.tree_out, tree.to_newick() + "\n", option="--tree-out")
    if args.provenance:
        import json
        from ._common import command_provenance
        record = command_provenance(args, files=[args.tree] if args.tree else [])
        write_output(args.provenance, json.dumps({"provenance": record}, indent=1) + "\n",
                     option="--provenance")
    return 0
