"""The model-comparison workflow of the library (phylo.marginal.workflow).

Checked: candidates travel as plain picklable strings and rebuild the same tree;
the one seed convention (identity from model structure and splits, not names or
leaf order; SeedSequence recomputed here independently); ``phylo marginal`` and
``compare_candidates`` give the same number for the same candidate and seed; serial
and process-pool runs are bit-identical whatever the completion order; a resumed run
redoes no finished task and equals an uninterrupted one; a worker killed mid-task is
retried with an unchanged result; an error of the task itself is not retried.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest

from phylo.cli import main
from phylo.errors import CheckpointError, EstimatorError, PhyloError
from phylo.io.alignment import read_alignment
from phylo.io.newick import parse_newick
from phylo.io.trees import read_trees
from phylo.marginal import (ESTIMATORS, CandidateSpec, CheckpointStore, PoissonGammaProblem,
                            Problem, compare_candidates, derive_seed, get_estimator)
from phylo.marginal import workflow
from phylo.marginal.executors import LocalProcessPool, is_lost_worker_error, parse_executor
from phylo.marginal.workflow import (build_problem, candidate_identity, problem_identity,
                                     topology_key)

from workflow_rows import TINY, numbers

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
#: Smallest ladder that exercises every code path (3 rungs, 20 samples per rung).
#: The CLI prints the estimate through JSON (repr of a float round-trips exactly).
JSON_ROUND_TRIP = 0.0
#: Upper bound (s) on each wait for a subprocess in the client-kill test.
CLIENT_KILL_WAIT = 300




@pytest.fixture(scope="module")
def alignment():
    return read_alignment(DATA / "example.fasta")


@pytest.fixture(scope="module")
def candidates(alignment):
    out = []
    for model in ("JC", "K80"):
        for name in ("true", "nni1"):
            tree = next(read_trees(DATA / "candidates" / f"{name}.nwk", taxa=alignment.taxa))
            out.append(CandidateSpec.from_tree(model, tree, name=f"{model} on {name}",
                                               source=f"{name}.nwk"))
    return out


@pytest.fixture(scope="module")
def estimator():
    return get_estimator("stepping-stone", **TINY)


@pytest.fixture(scope="module")
def serial(alignment, candidates, estimator):
    return compare_candidates(alignment, candidates, estimator, seed=11, repeats=2)


# -- candidates and identity -------------------------------------------------------------
def test_candidate_spec_is_frozen_picklable_and_rebuilds_the_tree_exactly(alignment,
                                                                         candidates):
    spec = candidates[1]
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(AttributeError):
        spec.model = "GTR"                                   # frozen
    original = next(read_trees(DATA / "candidates" / "true.nwk", taxa=alignment.taxa))
    rebuilt = candidates[0].tree(alignment.taxa)
    assert np.array_equal(rebuilt.parent, original.parent)
    assert np.array_equal(rebuilt.branch_lengths, original.branch_lengths)   # bit for bit
    with pytest.raises(PhyloError):
        CandidateSpec("JC", "(a,b,c);", name=" ")
    with pytest.raises(PhyloError):
        CandidateSpec("JC", "(a,b,c);", name="x", topology_kind="forest")


def test_identity_ignores_names_leaf_order_and_rooting_but_not_topology_or_model():
    a = parse_newick("((A:0.1,B:0.2):0.05,C:0.3,(D:0.1,E:0.1):0.2);")
    same = parse_newick("((E,D),(B,A),C);")                      # other order, no lengths
    rooted = parse_newick("[&R] (((A,B),C),(D,E));")             # rooted on a branch
    other = parse_newick("((A,C),B,(D,E));")
    assert topology_key(a) == topology_key(same) == topology_key(rooted)
    assert topology_key(a) != topology_key(other)
    # the splits written out by hand (side without the first taxon, sorted)
    assert topology_key(a) == "A,B,C,D,E;C,D,E;D,E"
    assert candidate_identity("JC", a) == candidate_identity("JC69", same)
    assert candidate_identity("JC", a) != candidate_identity("JC", other)
    assert candidate_identity("HKY+G4", a) != candidate_identity("HKY", a)
    assert CandidateSpec("JC", a.to_newick(), name="one").identity() == \
        CandidateSpec("JC", same.to_newick(), name="two").identity()


def test_derive_seed_is_the_documented_seedsequence():
    """Recompute the convention from its description, independently of the code."""
    identity, est, master, r = "abc", "stepping-stone", 42, 3
    digest = hashlib.sha256(b"abc\nstepping-stone").digest()
    words = tuple(int.from_bytes(digest[4 * i:4 * i + 4], "little") for i in range(4))
    state = np.random.SeedSequence(master, spawn_key=words + (r,)).generate_state(2, np.uint32)
    assert derive_seed(master, identity, est, r) == ((int(state[0]) << 32 | int(state[1])) >> 11)
    seeds = {derive_seed(master, identity, est, k) for k in range(50)}
    assert len(seeds) == 50 and max(seeds) < 2 ** 53
    assert derive_seed(master, identity, "laplace", r) != derive_seed(master, identity, est, r)
    assert derive_seed(master + 1, identity, est, r) != derive_seed(master, identity, est, r)
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(EstimatorError):
            derive_seed(bad, identity, est, 0)


def test_phylo_marginal_and_compare_give_the_same_number(tmp_path, alignment, candidates,
                                                        estimator, capsys):
    """One seed convention: the candidate "K80 on nni1" under seed 11 is the same run in
    ``phylo marginal`` (tree file read without the alignment's taxon order) and in the
    workflow (tree rebuilt from the candidate's Newick)."""
    rc = main(["marginal", str(DATA / "example.fasta"), str(DATA / "candidates" / "nni1.nwk"),
               "--model", "K80", "--estimator", "stepping-stone", "--steps", "3",
               "--samples", "20", "--burnin", "5", "--thin", "2", "--seed", "11",
               "--format", "json", "--quiet"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    got = compare_candidates(alignment, [candidates[3]], estimator, seed=11, repeats=1)
    row = got.rows[0]
    assert printed["seed"] == row["seed"] == 11
    assert printed["run_seed"] == row["run_seed"]
    assert abs(printed["log_marginal_likelihood"] - row["log_marginal_likelihood"]) \
        <= JSON_ROUND_TRIP


def test_rows_do_not_depend_on_other_candidates(alignment, candidates, estimator, serial):
    alone = compare_candidates(alignment, [candidates[2]], estimator, seed=11, repeats=2)
    together = [r for r in serial.rows if r["problem"] == candidates[2].name]
    assert numbers(alone.rows) == numbers(together)


def test_rows_and_diagnostics_shape(serial, candidates):
    assert [(r["problem"], r["repeat"]) for r in serial.rows] == \
        [(c.name, k) for c in candidates for k in range(2)]
    assert set(serial.diagnostics) == {c.name for c in candidates}
    for d in serial.diagnostics.values():
        assert len(d["ladder_betas"]) == TINY["n_steps"] + 1
        assert len(d["ladder_contributions"]) == TINY["n_steps"]
    r0, r1 = serial.rows[0], serial.rows[1]
    assert r0["run_seed"] != r1["run_seed"]
    assert r0["log_marginal_likelihood"] != r1["log_marginal_likelihood"]


# -- executors -------------------------------------------------------------------------------
def test_process_pool_is_bit_identical_to_serial(alignment, candidates, estimator, serial):
    """A plain concurrent.futures executor (2 spawned processes): the same rows, bit
    for bit, and the same diagnostics; arrival order does not matter."""
    ctx = multiprocessing.get_context("spawn")
    arrivals = []
    laplus = get_estimator("gamma-laplus")              # no standard error: NaN in rows
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        parallel = compare_candidates(alignment, candidates, estimator, seed=11, repeats=2,
                                      executor=pool,
                                      progress=lambda e: arrivals.append(
                                          (e.task.name, e.task.repeat)))
        laplus_rows = compare_candidates(alignment, candidates, laplus, seed=11,
                                         executor=pool).rows
    assert numbers(laplus_rows) == numbers(
        compare_candidates(alignment, candidates, laplus, seed=11).rows)
    assert numbers(parallel.rows) == numbers(serial.rows)
    assert parallel.diagnostics == serial.diagnostics
    assert parallel.warmup_seconds > 0 and serial.warmup_seconds == 0   # cache filled first
    assert sorted(arrivals) == sorted((r["problem"], r["repeat"]) for r in serial.rows)


def kill_first_attempt(alignment, candidate, *, marker: str, client_pid: int, **options):
    """A problem factory that SIGKILLs its worker on the first attempt at one candidate
    (the ``marker`` file makes it fire once; never in the client, which also builds
    problems to warm Numba's cache): the worker dies in the middle of the task."""
    if (candidate.name == "K80 on true" and os.getpid() != client_pid
            and not Path(marker).exists()):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return build_problem(alignment, candidate, **options)


def test_killed_worker_is_retried_and_the_result_is_unchanged(tmp_path, alignment,
                                                              candidates, estimator, serial):
    options = {"marker": str(tmp_path / "killed"), "client_pid": os.getpid()}
    with LocalProcessPool(2) as pool:
        got = compare_candidates(alignment, candidates, estimator, seed=11, repeats=2,
                                 executor=pool, problem_factory=kill_first_attempt,
                                 problem_options=options)
        assert pool.restarts >= 1                       # the pool broke and was replaced
    assert (tmp_path / "killed").exists()
    assert numbers(got.rows) == numbers(serial.rows)


def failing_factory(alignment, candidate, **options):
    raise EstimatorError(f"no problem for {candidate.name}")


def test_task_errors_are_raised_not_retried(alignment, candidates, estimator):
    calls = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        class Counting:
            def submit(self, fn, *a, **k):
                calls.append(1)
                return pool.submit(fn, *a, **k)
        with pytest.raises(EstimatorError, match="no problem for"):
            compare_candidates(alignment, candidates[:1], estimator, seed=1, repeats=1,
                               executor=Counting(), problem_factory=failing_factory,
                               warm=False)
        assert calls == [1]                                  # submitted once, not retried
        with pytest.raises(EstimatorError, match="no problem for"):
            compare_candidates(alignment, candidates[:1], estimator, seed=1, repeats=1,
                               executor=Counting(), problem_factory=failing_factory)
        assert calls == [1]                 # the warm-up met the error before any submit


def test_executor_text():
    assert parse_executor("serial") == ("serial", None)
    assert parse_executor("local:3") == ("local", 3)
    assert parse_executor("dask:tcp://127.0.0.1:8786") == ("dask", "tcp://127.0.0.1:8786")
    for bad in ("local:0", "local:x", "dask:", "ray:1", "local"):
        with pytest.raises(PhyloError):
            parse_executor(bad)
    from concurrent.futures.process import BrokenProcessPool
    assert is_lost_worker_error(BrokenProcessPool("x"))
    assert not is_lost_worker_error(EstimatorError("x"))


# -- checkpoint store and resume ---------------------------------------------------------------
def test_resume_redoes_no_finished_work(tmp_path, monkeypatch, alignment, candidates,
                                        estimator, serial):
    """Interrupt after 3 of 8 tasks; the resumed run evaluates exactly the other 5
    (counted at evaluate_candidate) and returns the uninterrupted rows."""
    fingerprint = {"candidates": [c.to_dict() for c in candidates], "seed": 11}
    store = CheckpointStore(tmp_path / "ckpt", fingerprint).open(resume=False)
    seen = []

    def stop_after_three(event):
        seen.append(event)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare_candidates(alignment, candidates, estimator, seed=11, repeats=2, store=store,
                           progress=stop_after_three)
    assert len(store.finished()) == 3
    real = workflow.evaluate_candidate
    calls = []
    monkeypatch.setattr(workflow, "evaluate_candidate",
                        lambda a, c, e, **k: (calls.append((c.name, k["repeats"])),
                                              real(a, c, e, **k))[1])
    again = CheckpointStore(tmp_path / "ckpt", fingerprint).open(resume=True)
    told = []
    resumed = compare_candidates(alignment, candidates, estimator, seed=11, repeats=2,
                                 store=again, progress=lambda e: told.append((e.done, e.reused)))
    assert told == [(k, k <= 3) for k in range(1, 9)]   # reused first, counts run up
    assert len(calls) == 5 and len(resumed.reused) == 3 and len(resumed.computed) == 5
    assert {(n, r) for n, (r,) in calls}.isdisjoint(resumed.reused)
    assert numbers(resumed.rows) == numbers(serial.rows)
    assert resumed.diagnostics == serial.diagnostics
    with pytest.raises(CheckpointError, match="different run.*seed"):
        CheckpointStore(tmp_path / "ckpt", {**fingerprint, "seed": 12}).open(resume=True)


def test_interrupted_ladder_resumes_from_its_rung_file(tmp_path, monkeypatch, alignment,
                                                       candidates, estimator, serial):
    """A ladder stopped after 2 rungs leaves its rung file in the store; the resumed
    task continues from it (resumed_steps) and gives the uninterrupted number."""
    from phylo.marginal.estimators import power_posterior as pp
    real = pp.SteppingStone._estimate

    def stop(self, problem, **kw):
        kw["stop_after"] = 2            # library test hook: KeyboardInterrupt after 2 rungs
        return real(self, problem, **kw)

    store = CheckpointStore(tmp_path / "c", {"x": 1}).open(resume=False)
    monkeypatch.setattr(pp.SteppingStone, "_estimate", stop)
    with pytest.raises(KeyboardInterrupt):
        compare_candidates(alignment, candidates[:1], estimator, seed=11, repeats=1,
                           store=store)
    assert store.rung_path(candidates[0].name, 0).exists()
    monkeypatch.setattr(pp.SteppingStone, "_estimate", real)
    got = compare_candidates(alignment, candidates[:1], estimator, seed=11, repeats=1,
                             store=CheckpointStore(tmp_path / "c", {"x": 1}).open(resume=True))
    assert got.rows[0]["log_marginal_likelihood"] == serial.rows[0]["log_marginal_likelihood"]
    assert not store.rung_path(candidates[0].name, 0).exists()


def test_store_skips_a_torn_file(tmp_path, alignment, candidates, estimator):
    store = CheckpointStore(tmp_path / "s", {"x": 1}).open(resume=False)
    compare_candidates(alignment, candidates[:1], estimator, seed=2, repeats=1, store=store)
    path = store.task_path(candidates[0].name, 0)
    path.write_text(path.read_text()[:40])                 # a crash mid-write (no rename)
    assert store.finished() == {}


# -- estimators declare what the workflow needs --------------------------------------------------
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimators_declare_roles_resumability_and_warmup(name):
    est = get_estimator(name)
    settings = est.settings()
    assert set(est.setting_roles.values()) <= set(settings)
    assert set(est.warmup_settings) <= set(settings)
    assert est.resumable == ("steps" in est.setting_roles)   # the ladders, and only they
    toy = PoissonGammaProblem.simulate(5, 2, seed=3)
    res = est.warmup().run(toy, seed=1)
    assert np.isfinite(res.log_marginal_likelihood) or res.log_marginal_likelihood == -np.inf
    with pytest.raises(EstimatorError, match="unknown setting"):
        est.with_settings(warp=9)


def test_problem_identity_of_a_problem_matches_its_candidate(alignment, candidates):
    spec = candidates[1]
    problem = Problem(alignment, spec.tree(alignment.taxa), spec.model)
    assert problem_identity(problem) == spec.identity()


# -- the command line ---------------------------------------------------------------------------
def test_cli_executor_local_matches_serial(tmp_path, capsys):
    args = [str(DATA / "example.fasta"), "--models", "JC", "K80", "--trees",
            str(DATA / "candidates" / "true.nwk"), str(DATA / "candidates" / "nni1.nwk"),
            "--steps", "3", "--samples", "20", "--burnin", "5", "--set", "thin=2",
            "--repeats", "2", "--seed", "3", "--quiet", "--format", "json"]
    assert main(["compare", *args, "--out", str(tmp_path / "serial")]) == 0
    assert main(["compare", *args, "--out", str(tmp_path / "local"),
                 "--executor", "local:2"]) == 0
    capsys.readouterr()
    rows = {k: json.loads((tmp_path / k / "report.json").read_text())["rows"]
            for k in ("serial", "local")}
    assert len(rows["local"]) == 8
    assert numbers(rows["local"]) == numbers(rows["serial"])


@pytest.mark.parametrize("spec", ["local:0", "ray:4", "dask:"])
def test_cli_bad_executor_is_one_line(tmp_path, capsys, spec):
    code = main(["compare", str(DATA / "example.fasta"), "--models", "JC", "--quiet",
                 "--out", str(tmp_path / "o"), "--executor", spec])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--executor" in err, err
    assert not (tmp_path / "o").exists()           # refused before any work or output


def test_client_killed_mid_run_resumes_without_redoing_work(tmp_path):
    """``phylo compare --executor local:2`` SIGKILLed (with its workers) once two runs
    are saved; ``--resume`` computes only the missing runs (counted from its log) and
    the report equals an uninterrupted run's."""
    import subprocess
    import sys
    import time
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [sys.executable, "-m", "phylo", "compare", str(DATA / "example.fasta"),
            "--models", "JC", "K80", "--trees",
            *[str(DATA / "candidates" / f"{t}.nwk") for t in ("true", "nni1", "nni2")],
            "--steps", "6", "--samples", "200", "--burnin", "10", "--repeats", "2",
            "--seed", "9"]
    total = 12
    out = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(out), "--executor", "local:2", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + CLIENT_KILL_WAIT
    saved: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        saved = list((out / "checkpoint").glob("*.rep*.json"))
        if len(saved) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)                  # the client and its workers
    proc.wait(timeout=60)
    finished = len(list((out / "checkpoint").glob("*.rep*.json")))
    assert 2 <= finished < total, f"kill came too late or never ({finished} saved)"
    assert not (out / "report.json").exists()
    resumed = subprocess.run([*args, "--out", str(out), "--resume"], env=env, text=True,
                             capture_output=True, timeout=CLIENT_KILL_WAIT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} of {total} runs" in resumed.stderr
    computed = [line for line in resumed.stderr.splitlines() if "ln Z =" in line]
    assert len(computed) == total - finished               # nothing finished was redone
    full = subprocess.run([*args, "--out", str(tmp_path / "full"), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=CLIENT_KILL_WAIT)
    assert full.returncode == 0, full.stderr
    rows = {k: json.loads((d / "report.json").read_text())["rows"]
            for k, d in (("resumed", out), ("full", tmp_path / "full"))}
    assert numbers(rows["resumed"]) == numbers(rows["full"])
