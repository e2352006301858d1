"""Atomic file writes: the one writer of every checkpoint and report file, and the one
conversion of NumPy values for the JSON those files and the command line hold."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
