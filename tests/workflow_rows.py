"""Helpers shared by the workflow tests (serial, local processes, Dask)."""
from __future__ import annotations

import json

#: A stepping-stone ladder small enough for a test: 3 rungs of 20 samples.
TINY = {"n_steps": 3, "samples_per_step": 20, "burnin": 5, "thin": 2}


def numbers(rows):
    """Rows without their wall-clock times (everything else must be reproduced), as
    JSON text: a NaN standard error (none known) then equals itself."""
    return [json.dumps({k: v for k, v in r.items() if k not in ("seconds", "compile_seconds")})
            for r in rows]
