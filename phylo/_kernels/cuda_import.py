"""The one place that imports ``numba.cuda`` (lazily: importing :mod:`phylo` never does).

Two environment quirks are handled here and nowhere else:

* numpy 2.5 removed ``np.row_stack``; numba-cuda 0.30 still registers an overload for
  it while ``numba.cuda`` is imported, and fails there. ``np.row_stack`` is set to
  ``np.vstack`` (its old alias) only where numpy lacks it, before that import.
* Numba reads ``NUMBA_ENABLE_CUDASIM`` when ``numba`` itself is first imported (which
  ``import phylo`` does). So that setting the variable later (a test fixture, a
  notebook) still selects the CUDA simulator, the configuration is reloaded once
  before ``numba.cuda`` is imported; the reload resets Numba's cache folder, which is
  pointed back at phylo's kernel-hash folder (:mod:`phylo._kernels`).
"""
from __future__ import annotations

import os


def simulator_requested() -> bool:
    """Whether ``NUMBA_ENABLE_CUDASIM`` asks for numba's CUDA simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def import_cuda():
    """``numba.cuda`` (raises ImportError when numba-cuda is missing or broken)."""
    import numpy as np

    if not hasattr(np, "row_stack"):        # numpy >= 2.5: see the module docstring
        np.row_stack = np.vstack
    import sys

    from numba.core import config

    if "numba.cuda" not in sys.modules and simulator_requested() and not config.ENABLE_CUDASIM:
        config.reload_config()
        from . import _configure_numba_cache
        _configure_numba_cache()
    from numba import cuda
    return cuda
