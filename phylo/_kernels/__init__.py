"""Numba kernels: pure functions over NumPy arrays (see docs/development.md).

Compiled kernels are cached on disk (``@njit(cache=True)``). Numba keys a cached
function on its own source file only, so a kernel that calls a kernel in another
module would keep running stale machine code after that callee changes (seen as
segfaults when argument layouts change). Importing this package therefore points
Numba's cache at a folder named after a hash of *all* kernel sources: any change to
any kernel starts a fresh cache. The base folder is ``$NUMBA_CACHE_DIR`` when set,
else ``~/.cache/phylo/numba`` (or the system temp folder if home is not writable).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def _kernel_source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _configure_numba_cache() -> None:
    from numba import config

    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "phylo", "numba")
    target = os.path.join(base, _kernel_source_digest())
    try:
        os.makedirs(target, exist_ok=True)
    except OSError:
        target = os.path.join(tempfile.gettempdir(), "phylo-numba", _kernel_source_digest())
        os.makedirs(target, exist_ok=True)
    config.CACHE_DIR = target


_configure_numba_cache()
