"""``phylo noise simulate|test|solve``: single-cell genotype matrices."""
from __future__ import annotations

import argparse
import os
import sys

from ._common import (add_format_argument, add_quiet_argument, add_seed_argument,
                      command_provenance, existing_file, write_json, write_table)
from ..errors import PhyloError

_MATRIX_FORMATS = ("auto", "scite", "phiscs")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "noise", help="single-cell genotype matrices: simulate, test, solve",
        description="Noisy single-cell genotype matrices (cells × mutations): simulate "
                    "them, test for a perfect phylogeny and linearity, and infer the "
                    "maximum-likelihood conflict-free matrix.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  phylo noise simulate --cells 100 --mutations 100 --fn 0.2 --fp 0.001 "
               "--seed 7 -o noisy.txt --true-out true.txt\n"
               "  phylo noise test true.txt --format json\n"
               "  phylo noise solve noisy.txt --fp 0.001 --fn 0.2 --format json")
    sub = parser.add_subparsers(dest="noise_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=_no_subcommand(parser))

    sim = sub.add_parser(
        "simulate", help="simulate a true and a noisy genotype matrix",
        description="Simulate a cell lineage, the true conflict-free matrix A and the "
                    "noisy observation A' (false positives α, false negatives β, missing).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  phylo noise simulate --cells 10 --mutations 10 --fn 0.1 "
               "--fp 0.002 --lineage coalescent --format phiscs -o noisy.tsv")
    sim.add_argument("--cells", type=int, default=100, help="number of cells (default: 100)")
    sim.add_argument("--mutations", type=int, default=100,
                     help="number of mutations (default: 100)")
    sim.add_argument("--fp", type=float, default=0.001, help="false-positive rate α (default: 0.001)")
    sim.add_argument("--fn", type=float, default=0.2, help="false-negative rate β (default: 0.2)")
    sim.add_argument("--missing", type=float, default=0.0, help="missing rate (default: 0)")
    sim.add_argument("--lineage", choices=("coalescent", "birth-death", "random-tree"),
                     default="coalescent", help="cell lineage model (default: coalescent)")
    sim.add_argument("--format", choices=("scite", "phiscs"), default="scite",
                     help="matrix file format (default: scite)")
    sim.add_argument("-o", "--out", required=True, help="noisy matrix file to write")
    sim.add_argument("--true-out", default=None, help="also write the true matrix here")
    add_seed_argument(sim)
    sim.set_defaults(func=run_simulate)

    test = sub.add_parser(
        "test", help="three-gametes (perfect phylogeny) and linearity tests",
        description="Exact checks of a complete 0/1 matrix in O(cells · mutations): is it "
                    "conflict-free (Gusfield 1991), and are its columns one chain?",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  phylo noise test true.txt --format json")
    test.add_argument("matrix", type=existing_file, help="genotype matrix file")
    test.add_argument("--input-format", choices=_MATRIX_FORMATS, default="auto",
                      help="matrix file format (default: auto-detect)")
    add_format_argument(test)
    test.set_defaults(func=run_test)

    solve = sub.add_parser(
        "solve", help="maximum-likelihood conflict-free matrix and mutation tree",
        description="Noise elimination: the maximum-likelihood conflict-free matrix under "
                    "false-positive rate α and false-negative rate β (estimated when not "
                    "given), by seeded local search over mutation trees.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  phylo noise solve noisy.txt --fp 0.001 --fn 0.2 "
               "-o solved.txt --format json")
    solve.add_argument("matrix", type=existing_file, help="genotype matrix file")
    solve.add_argument("--fp", type=float, default=None,
                       help="false-positive rate α (default: estimated)")
    solve.add_argument("--fn", type=float, default=None,
                       help="false-negative rate β (default: estimated)")
    solve.add_argument("--input-format", choices=_MATRIX_FORMATS, default="auto",
                       help="matrix file format (default: auto-detect)")
    solve.add_argument("-o", "--out", default=None,
                       help="where to write the solved matrix, in the input's format "
                            "(default: MATRIX with '.solved' before the extension)")
    solve.add_argument("--method", choices=("search", "exact", "auto"), default="search",
                       help="tree search, or exhaustive for <= 8 mutations (default: search)")
    solve.add_argument("--restarts", type=int, default=None,
                       help="seeded restarts of the local search (default: by size)")
    add_seed_argument(solve)
    add_format_argument(solve)
    add_quiet_argument(solve)
    solve.set_defaults(func=run_solve)


def _no_subcommand(parser):
    def run(args) -> int:
        parser.print_help(sys.stderr)
        return 2
    return run


def run_simulate(args) -> int:
    from ..noise import simulate, write_matrix
    sim = simulate(args.cells, args.mutations, alpha=args.fp, beta=args.fn,
                   missing=args.missing, lineage=args.lineage, seed=args.seed)
    write_matrix(args.out, sim.observed, args.format)
    if args.true_out:
        write_matrix(args.true_out, sim.true, args.format)
    return 0


def run_test(args) -> int:
    from ..noise import linearity, perfect_phylogeny, read_matrix
    gm = read_matrix(args.matrix, args.input_format)
    try:
        pp = perfect_phylogeny(gm.values)
        lin = linearity(gm.values)
    except PhyloError as exc:  # name the file for the one-line message
        raise type(exc)(exc.detail, path=args.matrix) from None
    pair = None
    if pp.conflicting_pair is not None:
        pair = [gm.mutations[pp.conflicting_pair[0]], gm.mutations[pp.conflicting_pair[1]]]
    record = {"conflict_free": pp.conflict_free, "conflicting_pair": pair,
              "linear": lin.linear, "cells": gm.shape[0], "mutations": gm.shape[1]}
    if args.format == "json":
        write_json(record, provenance=command_provenance(args, files=[args.matrix]))
    else:
        row = dict(record)
        row["conflicting_pair"] = " ".join(pair) if pair else "-"
        write_table([row], args.format)
    return 0


def _default_out(path: str) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}.solved{ext or '.txt'}"


def run_solve(args) -> int:
    from ..noise import read_matrix, solve, write_matrix
    from ..noise.io import detect_format
    gm = read_matrix(args.matrix, args.input_format)
    fmt = detect_format(args.matrix) if args.input_format == "auto" else args.input_format
    sol = solve(gm.values, alpha=args.fp, beta=args.fn, method=args.method,
                restarts=args.restarts, seed=args.seed)
    out = args.out or _default_out(args.matrix)
    write_matrix(out, sol.matrix, fmt, cells=gm.cells, mutations=gm.mutations)
    names = gm.mutations
    n = len(names)
    record = {
        "log_likelihood": sol.log_likelihood,
        "flips": sol.flips,
        "false_positives": sol.false_positives,
        "false_negatives": sol.false_negatives,
        "alpha": sol.alpha,
        "beta": sol.beta,
        "matrix_file": out,
        "tree": {
            "newick": sol.newick(names),
            "parent": {names[j]: (None if sol.parent[j] == n else names[sol.parent[j]])
                       for j in range(n)},
            "attachment": {cell: (None if a == n else names[a])
                           for cell, a in zip(gm.cells, sol.attachment)},
        },
        "seed": args.seed,
    }
    if args.format == "json":
        write_json(record, provenance=command_provenance(args, files=[args.matrix]))
    else:
        row = {k: v for k, v in record.items() if k != "tree"}
        write_table([row], args.format)
        if args.format == "text":
            print(record["tree"]["newick"])
    return 0
