#!/usr/bin/env python3
"""Regenerate every file in ``data/`` from the stated trees, models and seeds.

Run from anywhere (paths are relative to this file):

    python3 data/make_example.py            # rewrites data/*
    python3 data/make_example.py --check    # regenerates in memory, fails if any file differs

Everything is produced by the package itself (``phylo.Model.from_string``,
``phylo.likelihood.simulate.simulate_alignment``, ``phylo.noise.simulate``) from the
constants below; ``data/README.md`` states them for readers. The tree samples
(``example.run1.t``, ``example.run2.t``) are *synthetic* (a seeded perturbation
around the true tree), not the output of an MCMC.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # use the checkout's package when not installed

#: The tree the alignment is simulated on (unrooted; branch lengths in expected
#: substitutions per site). The branch above the (E,F),(G,H) clade is short (0.012),
#: so the NNI neighbours across it are the interesting alternatives.
TRUE_TREE = ("((sp_A:0.06,sp_B:0.08):0.04,(sp_C:0.05,sp_D:0.07):0.03,"
             "((sp_E:0.09,sp_F:0.04):0.05,(sp_G:0.07,sp_H:0.06):0.025):0.012);")

#: The two NNI neighbours of TRUE_TREE across its shortest internal branch, with the
#: true tree's branch lengths on the corresponding branches.
NNI_1 = ("((sp_A:0.06,sp_B:0.08):0.04,(sp_G:0.07,sp_H:0.06):0.025,"
         "((sp_E:0.09,sp_F:0.04):0.05,(sp_C:0.05,sp_D:0.07):0.03):0.012);")
NNI_2 = ("((sp_C:0.05,sp_D:0.07):0.03,(sp_G:0.07,sp_H:0.06):0.025,"
         "((sp_E:0.09,sp_F:0.04):0.05,(sp_A:0.06,sp_B:0.08):0.04):0.012);")
#: Two more neighbours, used only in the synthetic tree samples.
NNI_3 = ("((sp_A:0.06,sp_B:0.08):0.04,(sp_C:0.05,sp_D:0.07):0.03,"
         "((sp_G:0.07,(sp_E:0.09,sp_F:0.04):0.05):0.025,sp_H:0.06):0.012);")
NNI_4 = ("((sp_C:0.05,(sp_A:0.06,sp_B:0.08):0.04):0.03,sp_D:0.07,"
         "((sp_E:0.09,sp_F:0.04):0.05,(sp_G:0.07,sp_H:0.06):0.025):0.012);")

#: Simulation model, IQ-TREE syntax: HKY85 with κ = 4, unequal base frequencies,
#: discrete Γ with 4 categories and shape α = 0.5.
MODEL = "HKY{4.0}+F{0.3,0.2,0.2,0.3}+G4{0.5}"
N_SITES = 800
ALIGNMENT_SEED = 20261121

#: Synthetic "posterior" samples: topology weights and per-run seeds.
SAMPLE_TOPOLOGIES = (("true", TRUE_TREE, 0.60), ("nni1", NNI_1, 0.15),
                     ("nni2", NNI_2, 0.10), ("nni3", NNI_3, 0.10), ("nni4", NNI_4, 0.05))
SAMPLE_SIZE = 201            # trees per run: generations 0, 500, ..., 100000
SAMPLE_EVERY = 500
SAMPLE_LOG_SD = 0.25         # sd of the log-normal noise on each branch length
RUN_SEEDS = (101, 202)

#: Single-cell genotype example for ``phylo noise`` (PhISCS layout, cells x mutations).
NOISE = dict(n_cells=30, n_mutations=20, alpha=0.01, beta=0.2, missing=0.05,
             lineage="coalescent", seed=7)


def _parse(newick: str):
    from phylo.io.newick import parse_newick
    return parse_newick(newick)


def make_alignment() -> str:
    """FASTA text of the alignment simulated under MODEL on TRUE_TREE."""
    from phylo.models import Model
    from phylo.likelihood.simulate import simulate_alignment
    tree = _parse(TRUE_TREE)
    model = Model.from_string(MODEL)
    aln = simulate_alignment(tree, model, N_SITES, seed=ALIGNMENT_SEED)
    return aln.to_fasta()


def make_tree_sample(seed: int) -> str:
    """A MrBayes-style NEXUS ``.t`` file: translate block, ``tree gen.N = [&U] ...``."""
    rng = np.random.default_rng(seed)
    trees = [_parse(nwk) for _, nwk, _ in SAMPLE_TOPOLOGIES]
    weights = np.array([w for _, _, w in SAMPLE_TOPOLOGIES])
    taxa = trees[0].taxa
    number = {t: str(i + 1) for i, t in enumerate(taxa)}
    lines = ["#NEXUS", f"[ID: synthetic-{seed}]",
             "[Synthetic tree sample written by data/make_example.py (NOT an MCMC run):",
             f" topologies drawn with probabilities {', '.join(map(str, weights))}, branch lengths",
             f" multiplied by log-normal noise with sd {SAMPLE_LOG_SD}, seed {seed}.]",
             "begin trees;", "   translate"]
    for i, t in enumerate(taxa):
        lines.append(f"      {i + 1} {t}" + ("," if i + 1 < len(taxa) else ";"))
    for k in range(SAMPLE_SIZE):
        tree = trees[int(rng.choice(len(trees), p=weights))]
        bl = tree.branch_lengths * np.exp(rng.normal(0.0, SAMPLE_LOG_SD, tree.n_branches))
        sampled = tree.with_branch_lengths(np.round(bl, 6))
        # the same tree with leaves named by their translate-table numbers
        numbered = dataclasses.replace(sampled, taxa=tuple(number[t] for t in taxa))
        renamed = numbered.to_newick(precision=6)
        lines.append(f"   tree gen.{k * SAMPLE_EVERY} = [&U] {renamed}")
    lines.append("end;")
    return "\n".join(lines) + "\n"


def make_genotypes() -> str:
    """PhISCS-format genotype matrix (cells x mutations, '?' missing) for ``phylo noise``."""
    import tempfile
    from phylo.noise.simulate import simulate
    from phylo.noise.io import write_matrix
    sim = simulate(NOISE["n_cells"], NOISE["n_mutations"], alpha=NOISE["alpha"],
                   beta=NOISE["beta"], missing=NOISE["missing"], lineage=NOISE["lineage"],
                   seed=NOISE["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.tsv"
        write_matrix(path, sim.observed, "phiscs")
        return path.read_text()


def all_files() -> dict[str, str]:
    """``{relative path: text}`` of every generated file."""
    files = {
        "example_true_tree.nwk": TRUE_TREE + "\n",
        "candidates/true.nwk": TRUE_TREE + "\n",
        "candidates/nni1.nwk": NNI_1 + "\n",
        "candidates/nni2.nwk": NNI_2 + "\n",
        "example.fasta": make_alignment(),
        "example.run1.t": make_tree_sample(RUN_SEEDS[0]),
        "example.run2.t": make_tree_sample(RUN_SEEDS[1]),
    }
    try:
        files["example_genotypes.tsv"] = make_genotypes()
    except ImportError as exc:  # phylo.noise not installed in this checkout
        print(f"skipping example_genotypes.tsv: {exc}", file=sys.stderr)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a file in data/ differs")
    args = parser.parse_args(argv)
    files = all_files()
    differ = []
    for rel, text in files.items():
        path = HERE / rel
        if args.check:
            if not path.exists() or path.read_text() != text:
                differ.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote data/{rel}  sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}")
    if differ:
        print("differs from a fresh run: " + ", ".join(differ), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
