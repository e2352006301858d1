"""Atomic file writes: the one writer of every checkpoint and report file, the one
conversion of NumPy values for the JSON those files and the command line hold, and the
check that an output can be written, made before any long work."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import PhyloError


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, flushed to
    disk, then renamed over ``path`` (readers see the old or the new file, whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a failed write (disk full, interrupted) leaves the old file and no stray temp
        tmp.unlink(missing_ok=True)
        raise


def json_default(value: Any) -> Any:
    """``json.dump(..., default=json_default)``: NumPy scalars and arrays as Python
    numbers and lists, paths as strings; anything else is a TypeError."""
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


def check_output_path(path: str | os.PathLike, *, option: str = "--out",
                      folder: bool = False) -> str:
    """Check, before any long work, that ``path`` can be written; return it.

    ``folder=False``: ``path`` must not be a directory, its parent folder must exist,
    and the file must be writable (tried by opening an existing file for update, or
    by creating and removing a scratch file beside a new one). ``folder=True``: an
    existing writable folder, or a new one whose parent exists and is writable.
    ``"-"`` (stdout) always passes. A :class:`PhyloError` names the option and the
    path: the command line prints it as one line and exits 2.
    """
    p = os.fspath(path)
    if p == "-":
        return p
    if not p:
        raise PhyloError(f"{option} is empty: give a file name")
    target = os.path.abspath(p)
    if os.path.isdir(target):
        if not folder:
            raise PhyloError(f"{option} {p} is a directory; give a file name")
        _probe_folder(target, option, p)
        return p
    if folder and os.path.exists(target):
        raise PhyloError(f"{option} {p} is a file; give a folder name")
    if folder:  # created with its parents: the nearest existing ancestor must take it
        ancestor = os.path.dirname(target)
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise PhyloError(f"{option} {p}: {ancestor} is a file, not a folder")
        _probe_folder(ancestor, option, p)
        return p
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        what = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise PhyloError(f"{option} {p}: the folder {parent} {what}")
    if os.path.exists(target):
        try:
            with open(target, "r+b"):
                pass
        except OSError as exc:
            raise PhyloError(f"{option} {p} cannot be written ({exc.strerror or exc})") \
                from None
        return p
    _probe_folder(parent, option, p)
    return p


def _probe_folder(folder: str, option: str, shown: str) -> None:
    """Create and remove a scratch file in ``folder`` (os.access is wrong for root and
    for read-only file systems)."""
    import tempfile
    try:
        fd, scratch = tempfile.mkstemp(prefix=".phylo-write-test-", dir=folder)
    except OSError as exc:
        raise PhyloError(f"{option} {shown} cannot be written: the folder {folder} is not "
                         f"writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(scratch)
