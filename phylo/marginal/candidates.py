"""Candidates of a model comparison, built from the files users bring.

A comparison ranks :class:`~phylo.marginal.workflow.CandidateSpec` objects: a model on a
fixed topology, or a model integrated over tree space with a tree sample. This module
turns what a user has — models in IQ-TREE syntax, Newick/NEXUS tree files, constraint
trees, MrBayes/BEAST runs — into those specs, with the sentences a report needs to say
where every topology came from. ``phylo compare`` only parses its options into these
calls (:func:`fixed_topology_candidates`, :func:`tree_space_candidates`,
:func:`clade_bayes_factors`).

Conventions: topologies are unrooted (a rooted input tree is unrooted on reading) and
must be binary; leaves are ordered as the alignment's taxa.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import PhyloError, TreeError
from .workflow import CandidateSpec

#: Models compared when the caller names none.
DEFAULT_MODELS = ("JC69", "HKY+G4")

PathLike = str | os.PathLike


@dataclass(frozen=True)
class NamedTopology:
    """One candidate topology: its label in reports, the tree, and where it came from."""

    name: str
    tree: Any
    source: str


@dataclass(frozen=True)
class CandidateSet:
    """Candidates in report order (models outer, topologies inner) and the report's
    notes on how they were made."""

    candidates: tuple[CandidateSpec, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CladeEvidence:
    """Clade / constraint Bayes factors from a tree sample: one ``row`` per clade
    (:meth:`~phylo.marginal.tree_space.CladeBayesFactor.to_dict`) and one report
    sentence per row."""

    rows: tuple[dict, ...]
    notes: tuple[str, ...]


def check_models(models: Sequence[str]) -> list[str]:
    """``models`` as a list, each parsed once (a :class:`~phylo.errors.ModelError`
    names a wrong one); a model listed twice is refused, as its rows would collide."""
    from ..models import Model
    texts = [str(m) for m in models]
    if not texts:
        raise PhyloError("no model to compare")
    seen = {t for t in texts if texts.count(t) > 1}
    if seen:
        raise PhyloError(f"a model is listed twice: {', '.join(sorted(seen))}")
    for text in texts:
        Model.from_string(text)
    return texts


def read_candidate_trees(paths: Sequence[PathLike], taxa: Sequence[str]) -> list[NamedTopology]:
    """Every tree of every file (Newick, NEXUS; gzip ok), leaves in ``taxa`` order.

    The name is the file's stem (``nni1.nwk`` → ``nni1``), with ``#k`` appended when a
    file holds several trees; duplicate stems get their folder prepended. Rooted trees
    are unrooted; a polytomy or an empty file is one :class:`~phylo.errors.TreeError`
    naming the file.
    """
    from ..io._compressed import require_readable
    from ..io.trees import read_trees
    out: list[NamedTopology] = []
    stems = [Path(p).name.split(".")[0] for p in paths]
    for path, stem in zip(paths, stems):
        require_readable(path, what="tree file")
        name = stem if stems.count(stem) == 1 else f"{Path(path).parent.name}/{stem}"
        trees = list(read_trees(path, taxa=taxa))
        if not trees:
            raise TreeError("no tree in the file", path=path)
        for k, tree in enumerate(trees, 1):
            tree = tree.unrooted() if tree.rooted else tree
            if not tree.is_binary():
                raise TreeError("the tree is not binary (a polytomy); a comparison needs "
                                "binary topologies", path=path)
            label = name if len(trees) == 1 else f"{name}#{k}"
            out.append(NamedTopology(label, tree, f"{path}" + (
                "" if len(trees) == 1 else f" (tree {k})")))
    return out


def read_constraint(text: str | PathLike):
    """A constraint topology (polytomies allowed) from a Newick string or a file holding one."""
    from ..io.newick import parse_newick
    text = os.fspath(text)
    if "(" not in text:
        from ..io._compressed import read_text
        source, text = text, read_text(text, what="constraint tree file")
    else:
        source = "constraint"
    return parse_newick(text.strip(), source=source)


def fixed_topology_candidates(alignment, models: Sequence[str] = DEFAULT_MODELS, *,
                              tree_files: Sequence[PathLike] = (),
                              constraints: Sequence[str | PathLike] = ()) -> CandidateSet:
    """Every model on every topology: each tree of ``tree_files``, then for each
    constraint the neighbour-joining tree that contains its splits; with neither, the
    neighbour-joining tree of the Jukes–Cantor distances (and a note that says so).
    """
    from ..trees.nj import nj_tree
    model_texts = check_models(models)
    notes: list[str] = []
    topologies = read_candidate_trees(tree_files, alignment.taxa) if tree_files else []
    for k, text in enumerate(constraints, 1):
        constraint = read_constraint(text)
        topologies.append(NamedTopology(
            f"constraint{k}", nj_tree(alignment, constraint=constraint),
            f"neighbour joining under the constraint {constraint.to_newick(lengths=False)}"))
    if constraints:
        notes.append("Constraint candidates are the neighbour-joining trees (JC distances, "
                     "Saitou & Nei 1987) that contain every split of their constraint.")
    if not topologies:
        topologies = [NamedTopology("nj", nj_tree(alignment), "neighbour joining of JC distances")]
        notes.append("No topology was given: every model was evaluated on the "
                     "neighbour-joining tree of the Jukes–Cantor distances (Saitou & Nei "
                     "1987), a starting topology, not an inferred best tree. Give "
                     "candidate trees to compare topologies.")
    candidates = tuple(CandidateSpec.from_tree(text, t.tree, name=f"{text} on {t.name}",
                                               source=t.source)
                       for text in model_texts for t in topologies)
    return CandidateSet(candidates, tuple(notes))


def tree_space_candidates(models: Sequence[str], runs: Sequence[PathLike], *,
                          burnin: float = 0.25, sample_model: str | None = None) -> CandidateSet:
    """One candidate per model, integrated over unrooted topologies with the tree
    sample of ``runs`` (MrBayes ``.t``/``.trprobs``, BEAST ``.trees``; one file per run).

    burnin: fraction of each run discarded, in [0, 1). sample_model: the model the
    sample was made under (models that differ are integrated by SBN importance
    sampling); None means the sample is taken to be from each model's own posterior.
    """
    from ..io._compressed import require_readable
    from ..models import Model
    from .tree_space import tree_sample_spec
    if not runs:
        raise PhyloError("a tree-space comparison needs at least one tree sample")
    if not 0.0 <= burnin < 1.0:
        raise PhyloError(f"the burn-in must be a fraction in [0, 1), got {burnin}")
    for path in runs:
        require_readable(path, what="tree sample")
    model_texts = check_models(models)
    if sample_model is not None:
        Model.from_string(sample_model)
    spec = tree_sample_spec(runs, burnin=burnin, sample_model=sample_model)
    names = " ".join(os.fspath(p) for p in runs)
    candidates = tuple(CandidateSpec(model=text, topology=spec, name=f"{text} on tree space",
                                     source="tree sample " + names, topology_kind="tree-sample")
                       for text in model_texts)
    notes = ["Every candidate is a model integrated over unrooted topologies (uniform prior "
             f"1/(2n-5)!!) with the tree sample {names} (burn-in {burnin:g} per run"
             + (f", made under {sample_model}" if sample_model else
                ", assumed made under each model") + "); see phylo.marginal.tree_space."]
    if not sample_model:
        notes.append("No sample model was given: the posterior-odds method assumes the "
                     "sample is from each model's own posterior. Name the model the sample "
                     "was made under when it is not (the other models then use SBN "
                     "importance sampling).")
    return CandidateSet(candidates, tuple(notes))


def clade_bayes_factors(alignment, runs: Sequence[PathLike], *, clades: Sequence[Sequence[str]] = (),
                        constraints: Sequence[str | PathLike] = (), burnin: float = 0.25,
                        sample_model: str | None = None) -> CladeEvidence:
    """Bayes factors of clades (lists of taxon names) and constraint trees (every taxon)
    from the tree sample of ``runs``: posterior odds from the sample over the exact prior
    odds (:func:`phylo.marginal.tree_space.clade_bayes_factor`)."""
    from .tree_space import clade_bayes_factor, read_tree_sample
    if not (clades or constraints):
        return CladeEvidence((), ())
    sample = read_tree_sample(runs, burnin=burnin, taxa=alignment.taxa, model=sample_model)
    rows = [clade_bayes_factor(sample, clade=list(taxa)).to_dict() for taxa in clades]
    rows += [clade_bayes_factor(sample, constraint=read_constraint(text)).to_dict()
             for text in constraints]
    notes = []
    for r in rows:
        bound = {"upper": "< ", "lower": "> "}.get(r["bound"], "")
        post = f"{r['posterior']:.4g}" + ("" if r["posterior_se"] is None else
                                         f" ± {r['posterior_se']:.2g}")
        notes.append(f"Bayes factor of the {r['constraint']}: ln BF {bound}{r['log_bayes_factor']:.2f} "
                     f"(posterior {post} from {r['source']}; exact prior {r['prior']:.4g})"
                     + (f"; {r['note']}" if r["note"] else "")
                     + (f"; posterior under {sample_model}" if sample_model else ""))
    return CladeEvidence(tuple(rows), tuple(notes))


def tree_space_notes(name: str, diagnostics: dict, top: int = 5) -> list[str]:
    """What carried one tree-space estimate (method, mass or ESS, the ``top``
    topologies by share, warnings), as report sentences; empty for other candidates."""
    d = diagnostics or {}
    if "per_topology" not in d:
        return []
    how = f"{name}: {d.get('method')} ({d.get('method_reason')}); {d.get('n_topologies')} topologies"
    if d.get("method") == "odds":
        how += (f" holding posterior mass {d.get('posterior_mass', float('nan')):.3f} ± "
                f"{d.get('posterior_mass_se', float('nan')):.3f}")
    elif d.get("pareto_k") is not None:
        how += f", ESS {d.get('ess', float('nan')):.1f}, Pareto k-hat {d['pareto_k']:.2f}"
    rows = d["per_topology"][:top]
    tops = "; ".join(f"{r['share']:.3f}: {r['newick'].rstrip(';')}" for r in rows)
    out = [how + f". Topologies that carried it (share of the estimate: topology): {tops}"]
    out += [f"{name}: WARNING {w}" for w in d.get("warnings", [])]
    return out
