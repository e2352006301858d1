"""Helpers shared by the subcommands: output formats, progress, files."""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from typing import Any, Mapping, Sequence

from ..errors import PhyloError
from ..io.atomic import check_output_path, json_default  # noqa: F401 (re-exported)

FORMATS = ("text", "json", "csv", "md")


def add_format_argument(parser: argparse.ArgumentParser, default: str = "text") -> None:
    parser.add_argument("--format", choices=FORMATS, default=default,
                        help="output format on stdout (default: %(default)s)")


def _number(text: str, kind: type, low: float | None, high: float | None,
            low_open: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse ``type=``: an integer >= 1 (one-line usage error otherwise)."""
    return _number(text, int, 1, None, False, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    """argparse ``type=``: an integer >= 0."""
    return _number(text, int, 0, None, False, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse ``type=``: a finite number > 0 (NaN and inf refused)."""
    return _number(text, float, 0.0, None, True, "a finite number > 0")


def nonnegative_float(text: str) -> float:
    """argparse ``type=``: a finite number >= 0."""
    return _number(text, float, 0.0, None, False, "a finite number >= 0")


def probability(text: str) -> float:
    """argparse ``type=``: a number in [0, 1]."""
    return _number(text, float, 0.0, 1.0, False, "a number in [0, 1]")


def burnin_value(text: str) -> int | float:
    """argparse ``type=``: a burn-in, a fraction in [0, 1) or a whole number of trees >= 0."""
    try:
        return _number(text, int, 0, None, False, "")
    except argparse.ArgumentTypeError:
        pass
    value = _number(text, float, 0.0, 1.0, False,
                    "a fraction in [0, 1) or a whole number of trees >= 0")
    if value >= 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction in [0, 1) or a whole number of trees >= 0, got {text!r}")
    return value


#: numpy's SeedSequence takes integers in [0, 2**128); one 64-bit word is plenty.
MAX_SEED = 2**63 - 1


def seed_value(text: str) -> int:
    """argparse ``type=``: a seed, an integer in [0, 2**63 - 1]."""
    return _number(text, int, 0, MAX_SEED, False, f"an integer in [0, {MAX_SEED}]")


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed_value, default=1,
                        help="random seed, an integer >= 0; the same seed gives the same "
                             "result (default: 1)")


def write_output(path: str, text: str, *, option: str = "--out") -> None:
    """Write ``text`` to ``path`` ('-': stdout) through a temporary file renamed into
    place, so that a failure leaves no half-written file; an OSError becomes one
    :class:`PhyloError` naming the option."""
    if path == "-":
        sys.stdout.write(text)
        return
    from ..io.atomic import atomic_write
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise PhyloError(f"{option} {path} cannot be written ({exc.strerror or exc})") \
            from None


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


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where batched likelihoods run: cpu (default) or cuda (a GPU "
                             "through numba-cuda; NUMBA_ENABLE_CUDASIM=1 runs its slow "
                             "simulator)")


def apply_device(args: argparse.Namespace) -> str:
    """``--device``, checked before any long work (a missing numba-cuda or GPU is one
    :class:`phylo.errors.DeviceError`)."""
    device = getattr(args, "device", "cpu") or "cpu"
    if device == "cuda":
        from ..likelihood.cuda import require_cuda
        require_cuda()
    return device


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


#: Namespace entries that are not settings of a command (for its provenance record).
NOT_SETTINGS = frozenset({"func", "command", "format", "quiet", "argv"})


def command_provenance(args: argparse.Namespace, *, files: Sequence[str] = (),
                       settings: Mapping[str, Any] | None = None,
                       seeds: str | None = None) -> dict[str, Any]:
    """The :func:`phylo.provenance.provenance` record of a command: its command line,
    input ``files`` (hashed), options (plus ``settings``), ``--seed`` and ``seeds``."""
    from ..provenance import provenance
    options = {k: v for k, v in vars(args).items()
               if k not in NOT_SETTINGS and not callable(v)}
    argv = getattr(args, "argv", None)
    return provenance(command_line=None if argv is None else ["phylo", *argv],
                      files=[f for f in files if f and f != "-" and os.path.isfile(f)],
                      seed=getattr(args, "seed", None),
                      settings={**options, **dict(settings or {})}, seeds=seeds)


def write_table(rows: Sequence[Mapping[str, Any]], fmt: str, *, stream=None,
                extra: Mapping[str, Any] | None = None,
                provenance: Mapping[str, Any] | None = None) -> None:
    """Write a list of records as json, csv, md or aligned text.

    JSON is the list of records, or with ``extra``/``provenance`` an object
    ``{**extra, "rows": [...], "provenance": {...}}``; the other formats omit them.
    """
    stream = stream or sys.stdout
    if fmt == "json":
        if provenance is not None:
            extra = {**dict(extra or {}), "provenance": provenance}
        payload: Any = list(rows) if extra is None else {**extra, "rows": list(rows)}
        json.dump(payload, stream, indent=1, default=json_default)
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


def write_json(obj: Any, stream=None, *, provenance: Mapping[str, Any] | None = None) -> None:
    """Write ``obj`` as JSON; ``provenance`` is added under that key (``obj`` a dict)."""
    stream = stream or sys.stdout
    if provenance is not None:
        obj = {**obj, "provenance": provenance}
    json.dump(obj, stream, indent=1, default=json_default)
    stream.write("\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e5 else f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(v) for v in value)
    return str(value)
