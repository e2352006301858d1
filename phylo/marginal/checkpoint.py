"""Checkpoints: the store of a comparison, and the rung files of power-posterior ladders.

:class:`CheckpointStore` is one folder per comparison: ``run.json`` (the run's
fingerprint: inputs, candidates, estimator settings, seed), one JSON file per finished
(candidate, repeat) and, while a resumable estimator runs, that repeat's ladder file
(:class:`LadderCheckpoint`). Every file is written by :func:`atomic_write`, so a crash
leaves either the old or the new file, never a torn one.

One ladder ``.npz`` file holds every completed step of the ladder (log-likelihood,
log-prior, reference and acceptance traces; stored states where asked), the chain
state at the end of the last completed step, the bit-generator state of the run's
``numpy.random.Generator`` and the likelihood evaluations spent, plus a hash of the
settings (estimator, its settings, seed, problem). It is rewritten atomically after
each step. Resuming skips the completed steps and restores the generator, so a
resumed run returns exactly what an uninterrupted run returns.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import CheckpointError
from ..io.atomic import atomic_write, json_default

if TYPE_CHECKING:  # pragma: no cover
    from .workflow import TaskResult

FORMAT_VERSION = 1
#: Version of the store's layout (``run.json`` + one file per (candidate, repeat)).
STORE_FORMAT = 2




def settings_hash(settings: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``settings`` (first 16 hex digits)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LadderCheckpoint:
    """A checkpoint file for one ladder run identified by ``settings``."""

    def __init__(self, path: str | os.PathLike, settings: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.settings = dict(settings)
        self.hash = settings_hash(self.settings)

    def load(self) -> dict | None:
        """The saved progress, or None when the file does not exist yet.

        Raises :class:`CheckpointError` when the file belongs to other settings or
        cannot be read.
        """
        if not self.path.exists():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in data.files if k != "meta"}
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a checkpoint error
            raise CheckpointError(f"cannot read checkpoint: {exc}", path=self.path) from None
        if meta.get("version") != FORMAT_VERSION:
            raise CheckpointError("checkpoint written by another format version", path=self.path)
        if meta.get("hash") != self.hash:
            raise CheckpointError(
                "checkpoint belongs to a run with other settings "
                f"(saved {meta.get('settings')}, now {json.loads(json.dumps(self.settings, default=str))}); "
                "delete it or choose another file", path=self.path)
        steps: dict[int, dict[str, Any]] = {}
        for k in meta["steps"]:
            rec: dict[str, Any] = {}
            for field in ("loglik", "logprior", "logref", "acceptance", "z"):
                key = f"s{k}_{field}"
                rec[field] = arrays.get(key)
            steps[int(k)] = rec
        return {"steps": steps, "state": meta["state"], "rng_state": meta["rng_state"],
                "evaluations": meta["evaluations"]}

    def save(self, *, steps: Mapping[int, Mapping[str, Any]], state: dict | None,
             rng_state: dict, evaluations: int) -> None:
        arrays: dict[str, np.ndarray] = {}
        for k, rec in steps.items():
            for field, value in rec.items():
                if value is not None:
                    arrays[f"s{k}_{field}"] = np.asarray(value)
        meta = {"version": FORMAT_VERSION, "hash": self.hash,
                "settings": json.loads(json.dumps(self.settings, default=str)),
                "steps": sorted(int(k) for k in steps), "state": state,
                "rng_state": rng_state, "evaluations": int(evaluations)}
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
        atomic_write(self.path, buf.getvalue())


def _canonical(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(obj, default=json_default))


class CheckpointStore:
    """The checkpoint folder of one comparison (see the module docstring).

    fingerprint: a JSON-able record of everything that determines the results
    (inputs' sha256, candidates, estimator and settings, repeats, seed); a resumed
    run must present the same one. Open with :meth:`open` before use.
    """

    RUN_FILE = "run.json"

    def __init__(self, folder: str | os.PathLike, fingerprint: Mapping[str, Any]) -> None:
        self.folder = Path(folder)
        self.fingerprint = _canonical({"store_format": STORE_FORMAT, **fingerprint})

    # -- opening -------------------------------------------------------------------
    def open(self, *, resume: bool) -> "CheckpointStore":
        """Start afresh (stale files removed), or with ``resume`` check that the saved
        fingerprint is this run's (:class:`CheckpointError` names what differs)."""
        run_file = self.folder / self.RUN_FILE
        if resume and run_file.exists():
            try:
                saved = json.loads(run_file.read_text())
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"cannot read checkpoint ({exc})", path=run_file) from None
            if saved != self.fingerprint:
                keys = dict.fromkeys([*self.fingerprint, *saved])
                diff = [k for k in keys if saved.get(k) != self.fingerprint.get(k)]
                raise CheckpointError(
                    "the checkpoint belongs to a different run (differs in: "
                    f"{', '.join(diff)}); start over without resuming", path=run_file)
            return self
        if self.folder.exists():
            for f in self.folder.iterdir():
                if f.is_file() and f.suffix in (".json", ".npz", ".tmp", ".ckpt"):
                    f.unlink()
        atomic_write(run_file, json.dumps(self.fingerprint, indent=1))
        return self

    # -- file names ------------------------------------------------------------------
    @staticmethod
    def _stem(name: str, repeat: int) -> str:
        """``<readable name>.<8 hex of sha256(name)>.rep<r>``: unique per name."""
        slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_.")[:60] or "candidate"
        return f"{slug}.{hashlib.sha256(name.encode()).hexdigest()[:8]}.rep{int(repeat)}"

    def task_path(self, name: str, repeat: int) -> Path:
        return self.folder / f"{self._stem(name, repeat)}.json"

    def rung_path(self, name: str, repeat: int) -> Path:
        """The ladder checkpoint of one (candidate, repeat) (removed once it finishes)."""
        return self.folder / f"{self._stem(name, repeat)}.npz"

    # -- contents -------------------------------------------------------------------------
    def save_task(self, task: "TaskResult") -> None:
        """Save one finished (candidate, repeat) atomically."""
        atomic_write(self.task_path(task.name, task.repeat),
                     json.dumps(task.to_dict(), default=json_default))

    def finished(self) -> dict[tuple[str, int], "TaskResult"]:
        """Every saved (candidate, repeat) → its :class:`~phylo.marginal.workflow.TaskResult`;
        a file that cannot be read is skipped (that task is computed again)."""
        from .workflow import TaskResult
        out: dict[tuple[str, int], TaskResult] = {}
        if not self.folder.is_dir():
            return out
        for f in sorted(self.folder.glob("*.rep*.json")):
            try:
                task = TaskResult.from_dict(json.loads(f.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if f == self.task_path(task.name, task.repeat):
                out[(task.name, task.repeat)] = task
        return out
