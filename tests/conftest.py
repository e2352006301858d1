"""Shared fixtures: paths to ../shared, the example data, seeded generators."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("PHYLO_REQUIRE_ALL") == "1":
        pytest.fail(reason + " (PHYLO_REQUIRE_ALL=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder beside the repo (skips when absent)."""
    if not SHARED.is_dir():
        _skip_or_fail(f"../shared not found at {SHARED}; set PHYLO_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)
