"""The `phylo` command line: ``main(argv=None) -> int``.

Each subcommand lives in its own module ``phylo.cli.<name>`` exposing
``register(subparsers) -> None``, which adds its parser and sets
``func=run`` where ``run(args: argparse.Namespace) -> int``. The command line adds no
statistics of its own: every ``run`` calls the library.

Exit status: 0 on success, 2 on bad input (one line on stderr, no traceback),
130 when interrupted with Ctrl-C (after keeping what was finished).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .._version import __version__
from ..errors import PhyloError
from ..threads import check_threads, threads

#: Subcommand modules, in the order ``phylo --help`` lists them.
SUBCOMMAND_MODULES = (
    "loglik", "simulate", "marginal", "compare", "sbn", "asdsf", "noise",
)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit status 2.

    Subparsers inherit the class, so every subcommand behaves the same."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="phylo",
        description="Probabilistic phylogenetic inference: likelihoods, marginal "
                    "likelihoods, subsplit Bayesian networks, tree-sample diagnostics "
                    "and single-cell genotype noise.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"phylo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # subcommand not built yet
            raise
        module.register(subparsers)
    return parser






def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    args.argv = list(sys.argv[1:] if argv is None else map(str, argv))   # for provenance
    try:
        # --threads reaches every kernel the command calls (restored on return)
        with threads(check_threads(getattr(args, "threads", None), "--threads")):
            return int(args.func(args) or 0)
    except PhyloError as exc:
        print(f"phylo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phylo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def entry_point() -> None:  # console_scripts target
    sys.exit(main())
