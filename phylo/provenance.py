"""Where a result came from: one provenance record for every command and report.

:func:`provenance` returns a JSON-able ``dict``:

``phylo_version``  the package version;
``versions``       Python and the numerical libraries that were loaded;
``host``           host name, operating system, machine, logical CPU count, Numba threads;
``platform``       the operating system string (also in ``host``; kept for readers of
                   older reports);
``command_line``   the command that reproduces the result (or None from the API);
``date_utc``       ISO 8601, seconds;
``files``          every input file: path, sha256 of its bytes, size in bytes;
``settings``       the settings the command ran with (options, estimator settings);
``seed``           the master seed the user gave (None for deterministic commands);
``seeds``          how the seeds used were derived from it (a sentence), where any.

Every command's JSON output carries it under the key ``provenance``; ``phylo compare``
also puts it in its report.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import socket
import sys
from typing import Any, Iterable, Mapping, Sequence

from ._version import __version__

#: Libraries whose versions are recorded when they are loaded (importing them just to
#: report a version would slow every command down).
RECORDED_LIBRARIES = ("numpy", "scipy", "numba", "matplotlib", "Bio", "ete3", "dask",
                      "distributed")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def host_record() -> dict[str, Any]:
    """The machine a result was computed on."""
    record: dict[str, Any] = {"hostname": socket.gethostname(), "system": platform.platform(),
                              "machine": platform.machine(), "cpu_count": os.cpu_count()}
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            record["numba_threads"] = int(numba.get_num_threads())
        except Exception:  # noqa: BLE001 - threading layer not initialised: not recorded
            pass
    return record


def library_versions() -> dict[str, str]:
    """Python and the recorded libraries currently loaded."""
    import numpy
    versions = {"phylo": __version__, "python": platform.python_version(),
                "numpy": numpy.__version__}
    for name in RECORDED_LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and name not in versions:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def _plain(value: Any) -> Any:
    """``value`` reduced to JSON types (paths and unknown objects as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def provenance(*, command_line: Sequence[str] | str | None = None,
               files: Iterable[str | os.PathLike] = (), seed: int | None = None,
               settings: Mapping[str, Any] | None = None, seeds: str | None = None,
               now: _dt.datetime | None = None) -> dict[str, Any]:
    """The provenance record (see the module docstring) of a result.

    command_line: argv list or a string; files: the inputs (hashed now, so call this
    before a command could overwrite one); seed: the master seed; settings: options
    and estimator settings; seeds: how per-run seeds derive from ``seed``.
    """
    if isinstance(command_line, (list, tuple)):
        import shlex
        command_line = " ".join(shlex.quote(str(a)) for a in command_line)
    host = host_record()
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    record: dict[str, Any] = {
        "phylo_version": __version__,
        "versions": library_versions(),
        "host": host,
        "platform": host["system"],
        "command_line": command_line,
        "seed": seed,
        "date_utc": stamp.isoformat(),
        "files": [{"path": os.fspath(f), "sha256": sha256_file(f),
                   "bytes": os.path.getsize(f)} for f in dict.fromkeys(files)],
        "settings": _plain(dict(settings or {})),
    }
    if seeds is not None:
        record["seeds"] = seeds
    return record
