"""The model-comparison job: candidates in, a checkpointed report folder out.

:func:`model_comparison_report` is the library form of ``phylo compare``: it estimates
every candidate's log marginal likelihood with
:func:`phylo.marginal.workflow.compare_candidates` (serial, a process pool or Dask —
the numbers do not depend on it), keeps every finished run in ``OUT/checkpoint`` so
that a rerun with ``resume=True`` only computes what is missing, and writes the report
(``report.html``, ``report.md``, ``report.json``, ``summary.csv``, figures) with log
Bayes factors against the best candidate. Interrupted (Ctrl-C), it writes the finished
candidates as a partial report and raises :class:`ComparisonInterrupted`.

The command line only parses its options into this call, draws the progress bar and
prints the summary.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import PhyloError
from ..io.atomic import atomic_write
from .render import json_ready

DEFAULT_TITLE = "Model comparison by marginal likelihood"


class ComparisonInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`model_comparison_report`, after the partial report was
    written. ``finished``: candidates whose every repeat finished; ``total``: candidates;
    ``paths``: the partial report's files (empty when nothing had finished)."""

    def __init__(self, finished: int, total: int, paths: Mapping[str, Path]):
        super().__init__(f"interrupted after {finished} of {total} candidates")
        self.finished = finished
        self.total = total
        self.paths = dict(paths)


@dataclass(frozen=True)
class ComparisonReport:
    """What :func:`model_comparison_report` wrote.

    report: the report dict (as in ``report.json``); paths: file kind → path
    (``html``, ``md``, ``json``, ``csv``, ``figures/...``); warmup_seconds: Numba
    compilation before the workers started (not in any row's time).
    """

    report: dict
    paths: dict
    warmup_seconds: float = 0.0
    rows: tuple = field(default_factory=tuple)


def _model_label(model_text: str) -> str:
    """The model as given, with the parameters integrated over their priors."""
    from ..models import Model
    free = tuple(Model.from_string(model_text).free_parameters())
    return model_text + (f" (integrated over: {', '.join(free)})" if free else "")


def _is_tree_space(candidates: Sequence) -> bool:
    kinds = {c.topology_kind for c in candidates}
    if len(kinds) > 1:
        raise PhyloError("a comparison mixes fixed topologies and tree samples; "
                         "compare them in separate runs")
    return kinds == {"tree-sample"}


def prior_rows(candidates: Sequence, n_taxa: int) -> list[dict]:
    """The report's prior table; over tree space, the topology prior first."""
    from ..marginal.priors import prior_table
    rows = prior_table({c.model: c.model for c in candidates})
    if _is_tree_space(candidates):
        rows.insert(0, {"parameter": "unrooted topology",
                        "prior": f"uniform over the (2n-5)!! binary topologies of the n = {n_taxa} taxa",
                        "models": [c.model for c in candidates]})
    return rows


def _write_tree_space_json(out: Path, done: Sequence, diagnostics: dict,
                           clade_rows: Sequence[dict]) -> None:
    """OUT/tree_space.json: per model, how the tree-space estimate was made and the
    topologies that carried it; the clade / constraint Bayes factors."""
    doc = {"candidates": {c.name: diagnostics[c.name] for c in done},
           "bayes_factors": list(clade_rows)}
    atomic_write(out / "tree_space.json", json.dumps(json_ready(doc), indent=1, allow_nan=False) + "\n")


def model_comparison_report(alignment, candidates, estimator, *, out: str | os.PathLike,
                            seed: int = 1, repeats: int = 1, executor: Any = "serial",
                            resume: bool = False, title: str = DEFAULT_TITLE,
                            notes: Sequence[str] = (), clade_evidence: Any = None,
                            settings: Mapping[str, Any] | None = None,
                            provenance_record: Mapping[str, Any] | None = None,
                            progress: Callable[[Any], None] | None = None,
                            log: Callable[[str], None] | None = None) -> ComparisonReport:
    """Estimate every candidate ``repeats`` times and write the report folder ``out``.

    alignment: the :class:`~phylo.io.alignment.Alignment`.
    candidates: a :class:`~phylo.marginal.candidates.CandidateSet` (its notes go in the
        report) or a sequence of :class:`~phylo.marginal.workflow.CandidateSpec`; all
        fixed topologies, or all tree samples (then ``estimator`` is a
        :class:`~phylo.marginal.tree_space.TreeSpaceEstimator`).
    estimator: a registered name or an estimator instance with its settings.
    seed: master seed (per-run seeds: :data:`phylo.marginal.workflow.SEED_CONVENTION`).
    executor: ``"serial"``, ``"local:N"``, ``"dask:ADDRESS"`` or an executor object.
    resume: reuse the runs a previous call with the same inputs left in
        ``out/checkpoint`` (a different comparison there is refused).
    notes: extra report sentences; clade_evidence: a
        :class:`~phylo.marginal.candidates.CladeEvidence` (tree space only).
    settings: extra lines for the report's settings table (e.g. threads).
    provenance_record: the provenance to embed (default: built here, without a
        command line). progress: called after each finished run with a
        :class:`~phylo.marginal.workflow.Progress`. log: one-line messages.

    The output folder is checked for writability before any work. Returns a
    :class:`ComparisonReport`; Ctrl-C raises :class:`ComparisonInterrupted` after the
    partial report is written.
    """
    from ..io.atomic import check_output_path
    from ..marginal import get_estimator
    from ..marginal.candidates import tree_space_notes
    from ..marginal.checkpoint import CheckpointStore
    from ..marginal.executors import open_executor
    from ..marginal.workflow import SEED_CONVENTION, compare_candidates, comparison_fingerprint
    from .render import build_report, provenance, write_report

    if repeats < 1:
        raise PhyloError(f"repeats must be at least 1, got {repeats}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PhyloError(f"the seed must be a non-negative integer, got {seed!r}")
    notes = list(getattr(candidates, "notes", ())) + list(notes)
    candidates = list(getattr(candidates, "candidates", candidates))
    if not candidates:
        raise PhyloError("no candidate to compare")
    tree_space = _is_tree_space(candidates)
    clade_rows = list(getattr(clade_evidence, "rows", ()) or ())
    notes += list(getattr(clade_evidence, "notes", ()) or ())
    if clade_rows and not tree_space:
        raise PhyloError("clade Bayes factors come from a tree sample: they need "
                         "tree-sample candidates")
    if isinstance(estimator, str):
        estimator = get_estimator(estimator)
    out = Path(out)
    check_output_path(out, option="output folder", folder=True)
    log = log or (lambda message: None)
    problem_factory = None
    if tree_space:
        from ..marginal.tree_space import tree_space_problem
        problem_factory = tree_space_problem

    full_settings = estimator.settings()
    store = CheckpointStore(out / "checkpoint", comparison_fingerprint(
        alignment, candidates, estimator, seed=seed, repeats=repeats))
    store.open(resume=resume)
    total = len(candidates) * repeats
    if resume:
        log(f"resuming; {len(store.finished())} of {total} runs (candidate × repeat) "
            "already finished")
    source = alignment.source or "alignment"
    report_settings = {
        "estimator": estimator.name, **{f"estimator.{k}": v for k, v in full_settings.items()},
        "repeats": repeats, "seed": seed, "seeds": SEED_CONVENTION,
        "models": " ".join(dict.fromkeys(c.model for c in candidates)),
        "topologies": " ".join(dict.fromkeys(c.name.split(" on ", 1)[-1] for c in candidates)),
        "alignment": f"{source} ({alignment.n_taxa} taxa, {alignment.n_sites} sites, "
                     f"{alignment.n_patterns} patterns)",
        "executor": executor if isinstance(executor, str) else type(executor).__name__,
        "priors": "library defaults of phylo.marginal.Problem (listed under Priors)"
                  + ("; uniform over unrooted binary topologies" if tree_space else ""),
        **dict(settings or {}),
    }
    cand_info = [{"name": c.name, "model": _model_label(c.model),
                  "tree": ("integrated over unrooted topologies" if c.topology_kind == "tree-sample"
                           else c.tree(alignment.taxa).to_newick(lengths=False)),
                  "tree_source": c.source} for c in candidates]
    prov = dict(provenance_record) if provenance_record is not None else provenance(
        files=[p for p in [alignment.source] if p], seed=seed,
        settings={"estimator": estimator.name, "estimator_settings": full_settings,
                  "repeats": repeats}, seeds=SEED_CONVENTION)
    priors = prior_rows(candidates, alignment.n_taxa)
    finished: dict[tuple[str, int], Any] = {}
    started = time.perf_counter()

    def complete() -> list:
        return [c for c in candidates if all((c.name, r) in finished for r in range(repeats))]

    def write(run_notes: Sequence[str]) -> tuple[dict, dict]:
        done = complete()
        rows = [finished[(c.name, r)].row for c in done for r in range(repeats)]
        diagnostics = {c.name: finished[(c.name, 0)].diagnostics for c in done}
        prov["total_seconds_this_run"] = round(time.perf_counter() - started, 2)
        all_notes = list(run_notes)
        if tree_space:   # its notes carry the estimator's warnings too
            for c in done:
                all_notes += tree_space_notes(c.name, diagnostics[c.name])
            _write_tree_space_json(out, done, diagnostics, clade_rows)
        else:            # e.g. heavy-tailed importance weights (Pareto k-hat > 0.7)
            for c in done:
                for r in range(repeats):
                    for w in (finished[(c.name, r)].diagnostics or {}).get("warnings", []):
                        all_notes.append(f"{c.name}" + (f" (repeat {r + 1})" if repeats > 1 else "")
                                         + f": WARNING {w}")
        report = build_report(rows, candidates=cand_info, diagnostics=diagnostics,
                              settings=report_settings, provenance=prov, notes=all_notes,
                              expected=[c.name for c in candidates], title=title,
                              priors=priors)
        return report, write_report(report, out)

    def on_progress(event) -> None:
        finished[(event.task.name, event.task.repeat)] = event.task
        if progress is not None:
            progress(event)

    try:
        with (open_executor(executor) if isinstance(executor, str)
              else contextlib.nullcontext(executor)) as pool:
            result = compare_candidates(alignment, candidates, estimator, seed=seed,
                                        repeats=repeats, store=store, executor=pool,
                                        progress=on_progress, problem_factory=problem_factory)
    except KeyboardInterrupt:
        n_done = len(complete())
        paths = write(notes)[1] if n_done else {}
        raise ComparisonInterrupted(n_done, len(candidates), paths) from None
    if result.warmup_seconds:
        notes.append(f"Numba kernels were compiled once before the workers started "
                     f"({result.warmup_seconds:.1f} s, not in any runtime).")
    report, paths = write(notes)
    return ComparisonReport(report=report, paths=paths, warmup_seconds=result.warmup_seconds,
                            rows=tuple(result.rows))
