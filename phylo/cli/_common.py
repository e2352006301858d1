"""Helpers shared by the subcommands: output formats, progress, files."""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any, Mapping, Sequence

from ..errors import PhyloError

FORMATS = ("text", "json", "csv", "md")


def add_format_argument(parser: argparse.ArgumentParser, default: str = "text") -> None:
    parser.add_argument("--format", choices=FORMATS, default=default,
                        help="output format on stdout (default: %(default)s)")


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1,
                        help="random seed; the same seed gives the same result (default: 1)")


def add_fasta_names_argument(parser: argparse.ArgumentParser) -> None:
    """``--fasta-names``: how a FASTA ``>`` header names its taxon (see read_alignment)."""
    parser.add_argument("--fasta-names", choices=("first-word", "full-line"),
                        default="first-word",
                        help="FASTA alignments: name each taxon by the first word of its "
                             "'>' header or by the whole line (default: %(default)s)")


def read_alignment_arg(args: argparse.Namespace, path: str | None = None):
    """Read the command's alignment with its ``--fasta-names`` rule."""
    from ..io.alignment import read_alignment
    return read_alignment(path if path is not None else args.alignment,
                          fasta_names=getattr(args, "fasta_names", "first-word"))


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="number of threads for the numerical kernels and file reading "
                             "(default: all cores)")


def apply_threads(args: argparse.Namespace) -> int | None:
    """Validate ``--threads`` (a PhyloError naming the option otherwise). The count
    itself is applied around the whole command by :func:`phylo.cli.main` (with
    :func:`phylo.threads.threads`, restored afterwards)."""
    from ..threads import check_threads
    return check_threads(getattr(args, "threads", None), "--threads")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal and without ``--quiet``."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def require_file(path: str) -> str:
    """Check that ``path`` is an existing file; a :class:`PhyloError` names it otherwise."""
    if not os.path.exists(path):
        raise PhyloError("no such file", path=path)
    if os.path.isdir(path):
        raise PhyloError("is a directory, expected a file", path=path)
    return path


def existing_file(path: str) -> str:
    """argparse ``type=``: like :func:`require_file`, as a one-line usage error."""
    try:
        return require_file(path)
    except PhyloError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def write_table(rows: Sequence[Mapping[str, Any]], fmt: str, *, stream=None,
                extra: Mapping[str, Any] | None = None) -> None:
    """Write a list of records as json, csv, md or aligned text."""
    stream = stream or sys.stdout
    if fmt == "json":
        payload: Any = list(rows) if extra is None else {**extra, "rows": list(rows)}
        json.dump(payload, stream, indent=1, default=_json_default)
        stream.write("\n")
        return
    columns = list(rows[0].keys()) if rows else []
    if fmt == "csv":
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if fmt == "md":
        stream.write("| " + " | ".join(columns) + " |\n")
        stream.write("|" + "|".join("---" for _ in columns) + "|\n")
        for r in cells:
            stream.write("| " + " | ".join(r) + " |\n")
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    stream.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
    for r in cells:
        stream.write("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() + "\n")


def write_json(obj: Any, stream=None) -> None:
    stream = stream or sys.stdout
    json.dump(obj, stream, indent=1, default=_json_default)
    stream.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e5 else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(v) for v in value)
    return str(value)


def _json_default(value: Any) -> Any:
    import numpy as np
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
