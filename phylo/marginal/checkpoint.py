"""Checkpoints of power-posterior ladders (stepping stone, path sampling, …).

One ``.npz`` file holds every completed step of the ladder (log-likelihood,
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
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import CheckpointError

FORMAT_VERSION = 1


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, self.path)
