"""``phylo noise simulate|test|solve|sample``: single-cell genotype matrices."""
from __future__ import annotations

import argparse
import os
import sys

from ._common import (add_format_argument, add_quiet_argument, add_seed_argument,
                      check_output_path, command_provenance, existing_file, show_progress,
                      write_json, write_table)
from ..errors import PhyloError

_MATRIX_FORMATS = ("auto", "scite", "phiscs")
#: sampling diagnostics above these print a warning (R-hat: Gelman et al.'s
#: customary 1.1; a precedes probability differing by 0.1 between chains)
RHAT_WARN = 1.1
PRECEDES_WARN = 0.1
_RATES_HELP = ("per-cell or per-mutation error rates, CSV: a header 'cell' or 'mutation' "
               "then columns among fp, fn, hom, cc, and one row per cell or mutation "
               "name of the matrix; replaces the scalar options for those rates")


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
                    "conflict-free (Gusfield 1991), and are its columns one chain? With "
                    "--fp and --fn, also the posterior probabilities that the matrix was "
                    "observed through noise and that its tree branches (Bayesian "
                    "classifiers for the two tasks of Sadeqi Azer et al. 2020, exact by "
                    "enumeration up to 7 mutations; missing entries allowed).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  phylo noise test true.txt --format json\n"
               "  phylo noise test noisy.txt --fp 0.002 --fn 0.1 --seed 1 --format json")
    test.add_argument("matrix", type=existing_file, help="genotype matrix file")
    test.add_argument("--input-format", choices=_MATRIX_FORMATS, default="auto",
                      help="matrix file format (default: auto-detect)")
    test.add_argument("--fp", type=float, default=None,
                      help="false-positive rate α of the noisy class (with --fn: report "
                           "P(noisy) and P(branching))")
    test.add_argument("--fn", type=float, default=None, help="false-negative rate β")
    test.add_argument("--prior", type=float, default=0.5,
                      help="prior probability of each tested hypothesis (noisy; "
                           "branching) (default: 0.5)")
    add_seed_argument(test)
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
                       help="false-negative (dropout) rate β, SCITE's first -ad "
                            "(default: estimated)")
    solve.add_argument("--hom", type=float, default=None,
                       help="ternary model: rate of mutated sites called homozygous (2), "
                            "SCITE's second -ad value")
    solve.add_argument("--cc", type=float, default=None,
                       help="ternary model: rate of unmutated sites called homozygous (2), "
                            "SCITE's -cc")
    solve.add_argument("--rates", default=None, type=existing_file, metavar="FILE",
                       help=_RATES_HELP)
    solve.add_argument("--input-format", choices=_MATRIX_FORMATS, default="auto",
                       help="matrix file format (default: auto-detect)")
    solve.add_argument("--names", default=None, type=existing_file,
                       help="SCITE mutation names, one per line (default: MATRIX's "
                            ".geneNames beside it, when present)")
    solve.add_argument("-o", "--out", default=None,
                       help="where to write the solved matrix, in the input's format "
                            "(default: MATRIX with '.solved' before the extension)")
    solve.add_argument("--method", choices=("search", "exact", "auto"), default="search",
                       help="tree search, or exhaustive for <= 8 mutations (default: search)")
    solve.add_argument("--restarts", type=int, default=None,
                       help="run exactly this many independent restarts (default: "
                            "adaptive, see --confirmations)")
    solve.add_argument("--confirmations", type=int, default=3,
                       help="adaptive effort: stop when this many independent restarts "
                            "reached the best log-likelihood (default: 3)")
    solve.add_argument("--max-restarts", type=int, default=None,
                       help="adaptive effort: restart budget (default: by size, 24 for "
                            "up to 2e6 cells x mutations^2)")
    add_seed_argument(solve)
    add_format_argument(solve)
    add_quiet_argument(solve)
    solve.set_defaults(func=run_solve)

    samp = sub.add_parser(
        "sample", help="posterior over mutation trees and cell attachments (MCMC)",
        description="Sample mutation trees with the cell attachments summed out (SCITE's "
                    "-s -p sampling) in several seeded chains; write the posterior "
                    "probabilities that one mutation precedes another, of each cell's "
                    "attachment and of a branching tree, with split-R-hat diagnostics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  phylo noise sample dataXu.csv --fp 0.01 --fn 0.15 --chains 4 "
               "--iterations 50000 --out-prefix xu --format json")
    samp.add_argument("matrix", type=existing_file, help="genotype matrix file")
    samp.add_argument("--fp", type=float, default=None,
                      help="false-positive rate α (required unless in --rates)")
    samp.add_argument("--fn", type=float, default=None,
                      help="false-negative rate β (required unless in --rates)")
    samp.add_argument("--rates", default=None, type=existing_file, metavar="FILE",
                      help=_RATES_HELP + " (see solve)")
    samp.add_argument("--hom", type=float, default=None, help="ternary model: see solve")
    samp.add_argument("--cc", type=float, default=None, help="ternary model: see solve")
    samp.add_argument("--input-format", choices=_MATRIX_FORMATS, default="auto",
                      help="matrix file format (default: auto-detect)")
    samp.add_argument("--names", default=None, type=existing_file,
                      help="SCITE mutation names (default: MATRIX's .geneNames if present)")
    samp.add_argument("--chains", type=int, default=4, help="MCMC chains (default: 4)")
    samp.add_argument("--iterations", type=int, default=20000,
                      help="steps per chain (default: 20000)")
    samp.add_argument("--burn-in", type=int, default=None,
                      help="steps discarded per chain (default: a quarter)")
    samp.add_argument("--thin", type=int, default=None,
                      help="keep every THIN-th step (default: ~1000 kept per chain)")
    samp.add_argument("--out-prefix", required=True,
                      help="write PREFIX.precedes.csv, PREFIX.attachment.csv, "
                           "PREFIX.summary.json and PREFIX.precedes.png")
    samp.add_argument("--learn-fn", action="store_true",
                      help="sample β too (binary model), prior mean --fn and sd "
                           "--fn-prior-sd (SCITE's -e and -sd); reports its 95%% interval")
    samp.add_argument("--fn-prior-sd", type=float, default=0.1,
                      help="prior standard deviation of β with --learn-fn (default: 0.1)")
    samp.add_argument("--no-plot", action="store_true", help="skip the PNG")
    add_seed_argument(samp)
    add_format_argument(samp)
    samp.set_defaults(func=run_sample)


def _no_subcommand(parser):
    def run(args) -> int:
        parser.print_help(sys.stderr)
        return 2
    return run


def run_simulate(args) -> int:
    from ..noise import simulate, write_matrix
    check_output_path(args.out, option="--out")
    if args.true_out:
        check_output_path(args.true_out, option="--true-out")
    sim = simulate(args.cells, args.mutations, alpha=args.fp, beta=args.fn,
                   missing=args.missing, lineage=args.lineage, seed=args.seed)
    write_matrix(args.out, sim.observed, args.format)
    if args.true_out:
        write_matrix(args.true_out, sim.true, args.format)
    return 0


def run_test(args) -> int:
    from ..noise import (MISSING, branching_probability, linearity, noise_probability,
                         perfect_phylogeny, read_matrix)
    bayes = args.fp is not None or args.fn is not None
    if bayes and (args.fp is None or args.fn is None):
        raise PhyloError("--fp and --fn go together (the noisy class's error rates)")
    gm = read_matrix(args.matrix, args.input_format)
    record: dict = {"cells": gm.shape[0], "mutations": gm.shape[1]}
    complete = not (gm.values == MISSING).any()
    try:
        if complete or not bayes:      # the exact checks need every entry
            pp = perfect_phylogeny(gm.values)
            lin = linearity(gm.values)
            pair = None
            if pp.conflicting_pair is not None:
                pair = [gm.mutations[i] for i in pp.conflicting_pair]
            record.update(conflict_free=pp.conflict_free, conflicting_pair=pair,
                          linear=lin.linear)
        else:
            record.update(conflict_free=None, conflicting_pair=None, linear=None)
        if bayes:
            noisy = noise_probability(gm.values, alpha=args.fp, beta=args.fn,
                                      prior=args.prior, seed=args.seed)
            branching = branching_probability(gm.values, alpha=args.fp, beta=args.fn,
                                              prior=args.prior, seed=args.seed)
            for name, c in (("noisy", noisy), ("branching", branching)):
                record.update({f"p_{name}": c.probability, f"p_{name}_method": c.method,
                               f"p_{name}_mc_error": c.mc_error,
                               f"log_bf_{name}": c.log_bayes_factor})
    except PhyloError as exc:  # name the file for the one-line message
        raise type(exc)(exc.detail, path=args.matrix) from None
    if args.format == "json":
        write_json(record, provenance=command_provenance(args, files=[args.matrix]))
    else:
        row = dict(record)
        pair = row["conflicting_pair"]
        row["conflicting_pair"] = " ".join(pair) if pair else "-"
        write_table([row], args.format)
    return 0


def _rates_model(args, gm):
    """The error model of ``--rates FILE`` completed by the scalar options, or
    None without ``--rates``. A rate may come from the file or its option, not
    both; fp and fn must come from one of them (estimating scalar rates
    alongside per-cell or per-mutation ones is not supported)."""
    if args.rates is None:
        return None
    from ..noise import ErrorModel
    from ..noise.io import read_rates
    table = read_rates(args.rates, gm.cells, gm.mutations)
    given = {"fp": args.fp, "fn": args.fn, "hom": args.hom, "cc": args.cc}
    for col in table.rates:
        if given[col] is not None:
            raise PhyloError(f"the {col} rates are given both here and by --{col}; "
                             "keep one", path=args.rates)
    rates = {k: table.rates.get(k, given[k]) for k in given}
    for k in ("fp", "fn"):
        if rates[k] is None:
            raise PhyloError(f"no {k} rate: add a {k} column here or give --{k}",
                             path=args.rates)
    ternary = rates["hom"] is not None or rates["cc"] is not None
    model = ErrorModel(rates["fp"], rates["fn"],
                       0.0 if rates["hom"] is None else rates["hom"],
                       0.0 if rates["cc"] is None else rates["cc"], ternary=ternary)
    try:
        model.probabilities(*gm.shape)   # e.g. fp + cc >= 1 for some cell
    except PhyloError as exc:
        raise type(exc)(exc.detail, path=args.rates) from None
    return model


def _default_out(path: str) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}.solved{ext or '.txt'}"


def run_solve(args) -> int:
    from ..noise import read_matrix, solve, write_matrix
    from ..noise.io import detect_format
    gm = read_matrix(args.matrix, args.input_format, names=args.names)
    fmt = detect_format(args.matrix) if args.input_format == "auto" else args.input_format
    out = check_output_path(args.out or _default_out(args.matrix), option="--out")
    model = _rates_model(args, gm)
    rates = ({"model": model} if model is not None else
             {"alpha": args.fp, "beta": args.fn, "hom": args.hom, "cc": args.cc})

    def report(runs, hits, best):
        print(f"\rrestart {runs}: best log-likelihood {best:.4f} reached by {hits}",
              end="", file=sys.stderr, flush=True)
    progress = report if show_progress(args) else None
    try:
        sol = solve(gm.values, **rates, method=args.method, restarts=args.restarts,
                    confirmations=args.confirmations, max_restarts=args.max_restarts,
                    seed=args.seed, progress=progress)
    except PhyloError as exc:  # name the file for the one-line message
        raise type(exc)(exc.detail, path=args.matrix) from None
    finally:
        if progress is not None:
            print(file=sys.stderr)
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
        "error_model": sol.model.as_dict(),
        "restarts": sol.restarts,
        "hits": sol.hits,
        "converged": sol.converged,
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
        row = {k: v for k, v in record.items() if k not in ("tree", "error_model")}
        write_table([row], args.format)
        if args.format == "text":
            print(record["tree"]["newick"])
    if not sol.converged:
        print(f"phylo noise: warning: the best log-likelihood was reached by {sol.hits} "
                  f"of {sol.restarts} restarts (fewer than --confirmations "
                  f"{args.confirmations}); raise --max-restarts to confirm it",
                  file=sys.stderr)
    return 0


def run_sample(args) -> int:
    from ..noise import read_matrix
    from ..noise.posterior import sample_posterior, write_posterior
    if args.rates is None and (args.fp is None or args.fn is None):
        raise PhyloError("sampling needs the rates: give --fp and --fn (or --rates FILE)")
    gm = read_matrix(args.matrix, args.input_format, names=args.names)
    suffixes = [".precedes.csv", ".attachment.csv", ".summary.json"]
    if not args.no_plot:
        suffixes.append(".precedes.png")
    for suffix in suffixes:
        check_output_path(args.out_prefix + suffix, option="--out-prefix")
    model = _rates_model(args, gm)
    rates = ({"model": model} if model is not None else
             {"alpha": args.fp, "beta": args.fn, "hom": args.hom, "cc": args.cc})
    try:
        post = sample_posterior(gm.values, **rates, chains=args.chains,
                                iterations=args.iterations, burn_in=args.burn_in,
                                thin=args.thin, learn_beta=args.learn_fn,
                                beta_prior_sd=args.fn_prior_sd, seed=args.seed)
    except PhyloError as exc:  # name the file for the one-line message
        raise type(exc)(exc.detail, path=args.matrix) from None
    paths = write_posterior(post, args.out_prefix, cells=gm.cells, mutations=gm.mutations,
                            plot=not args.no_plot)
    record = {**post.summary(gm.mutations), "files": paths}
    if args.format == "json":
        write_json(record)
    else:
        row = {k: v for k, v in record.items() if k not in ("error_model", "files")}
        write_table([row], args.format)
    if post.rhat > RHAT_WARN or post.precedes_max_diff > PRECEDES_WARN:
        print(f"phylo noise: warning: the chains disagree (split-R-hat {post.rhat:.3f}, "
              f"largest between-chain difference of a precedes probability "
              f"{post.precedes_max_diff:.3f}); run more --iterations", file=sys.stderr)
    return 0
