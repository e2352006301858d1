"""The comparison workflow on Dask (the ``distributed`` extra).

A ``distributed.LocalCluster`` of two worker processes listening on 127.0.0.1 only is
started and closed inside this module; every wait is bounded (``DASK_TIMEOUT``).
Checked: the rows equal the serial run bit for bit; a worker SIGKILLed in the middle
of a task, or killed from outside while tasks run, changes nothing (the nanny
restarts it, the scheduler reruns its tasks with the same inputs and seeds);
``phylo compare --executor dask:ADDRESS`` writes the serial run's numbers.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'phylo[distributed]' "
                          "or '.[test]')")

from phylo.cli import main  # noqa: E402
from phylo.io.alignment import read_alignment  # noqa: E402
from phylo.io.trees import read_trees  # noqa: E402
from phylo.marginal import CandidateSpec, compare_candidates, get_estimator  # noqa: E402
from phylo.marginal.workflow import build_problem  # noqa: E402

from workflow_rows import TINY, numbers

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
#: Upper bound (s) on any single wait for the cluster: start-up, a whole comparison.
DASK_TIMEOUT = 180




@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.ERROR,
                                  timeout=DASK_TIMEOUT) as cluster, \
            distributed.Client(cluster, timeout=DASK_TIMEOUT) as client:
        client.wait_for_workers(2, timeout=DASK_TIMEOUT)
        yield cluster, client


@pytest.fixture(scope="module")
def alignment():
    return read_alignment(DATA / "example.fasta")


@pytest.fixture(scope="module")
def candidates(alignment):
    out = []
    for model in ("JC", "K80"):
        for name in ("true", "nni1", "nni2"):
            tree = next(read_trees(DATA / "candidates" / f"{name}.nwk", taxa=alignment.taxa))
            out.append(CandidateSpec.from_tree(model, tree, name=f"{model} on {name}"))
    return out


@pytest.fixture(scope="module")
def estimator():
    return get_estimator("stepping-stone", **TINY)


@pytest.fixture(scope="module")
def serial(alignment, candidates, estimator):
    return compare_candidates(alignment, candidates, estimator, seed=5, repeats=2)


def test_dask_is_bit_identical_to_serial(cluster, alignment, candidates, estimator, serial):
    _, client = cluster
    got = compare_candidates(alignment, candidates, estimator, seed=5, repeats=2,
                             executor=client, timeout=DASK_TIMEOUT)
    assert numbers(got.rows) == numbers(serial.rows)
    assert got.diagnostics == serial.diagnostics
    ran_on = client.run(os.getpid)
    assert len(ran_on) == 2 and os.getpid() not in ran_on.values()


def kill_once(alignment, candidate, *, marker: str, client_pid: int, **options):
    """Problem factory: the first attempt at "K80 on nni1" SIGKILLs its own worker
    process in the middle of the task (the ``marker`` file makes it fire only once;
    never in the client, which builds problems too, to warm Numba's cache)."""
    if candidate.name == "K80 on nni1" and os.getpid() != client_pid:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return build_problem(alignment, candidate, **options)


def test_worker_killed_mid_task_changes_nothing(cluster, tmp_path, alignment, candidates,
                                                estimator, serial):
    import cloudpickle
    import sys
    _, client = cluster
    marker = tmp_path / "killed"
    before = set(client.run(os.getpid).values())
    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers lack tests/
    try:
        got = compare_candidates(alignment, candidates, estimator, seed=5, repeats=2,
                                 executor=client, problem_factory=kill_once,
                                 problem_options={"marker": str(marker),
                                                  "client_pid": os.getpid()},
                                 timeout=DASK_TIMEOUT)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    killed = int(marker.read_text())
    assert killed in before                              # a worker really died mid-task
    client.wait_for_workers(2, timeout=DASK_TIMEOUT)     # the nanny restarted it
    assert killed not in set(client.run(os.getpid).values())
    assert numbers(got.rows) == numbers(serial.rows)
    assert got.diagnostics == serial.diagnostics


def test_worker_killed_from_outside_during_a_run(cluster, alignment, candidates, estimator,
                                                 serial):
    """SIGKILL one worker as soon as the first task reports back (others are running)."""
    _, client = cluster
    client.wait_for_workers(2, timeout=DASK_TIMEOUT)
    pids = list(client.run(os.getpid).values())
    killed = threading.Event()

    def kill_on_first(event):
        if not killed.is_set():
            killed.set()
            os.kill(pids[0], signal.SIGKILL)

    got = compare_candidates(alignment, candidates, estimator, seed=5, repeats=3,
                             executor=client, progress=kill_on_first, timeout=DASK_TIMEOUT)
    assert killed.is_set()
    expected = compare_candidates(alignment, candidates[:1], estimator, seed=5, repeats=3)
    assert numbers(got.rows[:3]) == numbers(expected.rows)
    assert numbers([r for r in got.rows if r["repeat"] < 2]) == numbers(serial.rows)
    client.wait_for_workers(2, timeout=DASK_TIMEOUT)
    assert pids[0] not in set(client.run(os.getpid).values())     # it was really killed


def test_cli_executor_dask(cluster, tmp_path, capsys):
    cl, _ = cluster
    args = [str(DATA / "example.fasta"), "--models", "JC", "--trees",
            str(DATA / "candidates" / "true.nwk"), str(DATA / "candidates" / "nni1.nwk"),
            "--steps", "3", "--samples", "20", "--burnin", "5", "--set", "thin=2",
            "--seed", "3", "--quiet", "--format", "json"]
    assert main(["compare", *args, "--out", str(tmp_path / "serial")]) == 0
    assert main(["compare", *args, "--out", str(tmp_path / "dask"),
                 "--executor", f"dask:{cl.scheduler_address}"]) == 0
    capsys.readouterr()
    rows = {k: json.loads((tmp_path / k / "report.json").read_text())["rows"]
            for k in ("serial", "dask")}
    assert numbers(rows["dask"]) == numbers(rows["serial"])
    report = json.loads((tmp_path / "dask" / "report.json").read_text())
    assert report["provenance"]["settings"]["executor"].startswith("dask:tcp://127.0.0.1:")


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    code = main(["compare", str(DATA / "example.fasta"), "--models", "JC", "--quiet",
                 "--out", str(tmp_path / "o"), "--executor", "dask:tcp://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot reach the scheduler" in err
