"""Parse 10⁵ MrBayes ``.t`` trees: phylo (bulk topologies and Tree objects) vs ete3 and
Biopython (Bio.Phylo), and ASDSF on 2 × 10⁵ trees including parsing.

The input is generated from the shared DS4 MrBayes run (41 taxa, 3001 trees per run,
branch lengths, translate table) by repetition into a temporary ``.t`` file. phylo's
``read_trees`` (full ``Tree`` objects: branch lengths, weight, rooting, source) runs on
all trees; the peers (which build full tree objects too) run on a subsample
(``--peer-trees``) and are extrapolated linearly (stated in the output). Numba
compilation is timed separately.

Usage: python benchmarks/tree_parsing.py [--trees 100000] [--peer-trees 3000] [--out DIR]
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("PHYLO_SHARED", REPO.parent / "shared"))


def make_file(src: Path, n: int, path: Path) -> None:
    lines = gzip.open(src, "rt").read().splitlines(True)
    head = [l for l in lines if not l.lstrip().startswith("tree ") and l.strip() != "end;"]
    trees = [l for l in lines if l.lstrip().startswith("tree ")]
    with open(path, "w") as fh:
        fh.writelines(head)
        for i in range(n):
            fh.write(trees[i % len(trees)].replace("tree gen.", f"tree rep{i}.", 1))
        fh.write("end;\n")


def newick_lines(path: Path, k: int, translate: dict):
    """First k tree strings with translated names (for the peers, which lack NEXUS translate)."""
    out = []
    tok = re.compile(r"([(,])(\d+)(?=[:,)\[])")
    with open(path) as fh:
        for line in fh:
            s = line.strip()
            if s.startswith("tree "):
                nwk = s.split("=", 1)[1].strip()
                nwk = nwk.replace("[&U]", "").strip()
                out.append(tok.sub(lambda m: m.group(1) + translate[m.group(2)], nwk))
                if len(out) >= k:
                    break
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", type=int, default=100000)
    ap.add_argument("--peer-trees", type=int, default=3000)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    from phylo.diagnostics import asdsf
    from phylo.io.trees import read_topologies, read_trees, tree_file_info
    src = SHARED / "reference" / "DS4_mrbayes_mcmc"
    res = {"benchmark": "tree_parsing", "n_trees": args.trees, "n_taxa": 41,
           "peer_subsample": args.peer_trees}
    with tempfile.TemporaryDirectory() as tmp:
        f1 = Path(tmp) / "run1.t"
        f2 = Path(tmp) / "run2.t"
        make_file(src / "DS4.run1.t.gz", args.trees, f1)
        make_file(src / "DS4.run2.t.gz", args.trees, f2)
        res["file_mb"] = f1.stat().st_size / 1e6
        small = Path(tmp) / "small.t"
        make_file(src / "DS4.run1.t.gz", 50, small)
        t0 = time.perf_counter()
        read_topologies(small)
        res["compile_or_cache_load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        smp = read_topologies(f1)
        res["phylo_read_topologies_s"] = time.perf_counter() - t0
        res["distinct_topologies"] = smp.n_topologies
        # Tree objects: every tree, streamed (compile/cache load of its kernel first)
        t0 = time.perf_counter()
        for _ in read_trees(small):
            pass
        res["read_trees_compile_or_cache_load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_read = 0
        for _ in read_trees(f1):
            n_read += 1
        res["phylo_read_trees_s"] = time.perf_counter() - t0
        assert n_read == args.trees
        k = args.peer_trees
        info = tree_file_info(f1)
        lines = newick_lines(f1, k, info.translate)
        from ete3 import Tree as EteTree
        t0 = time.perf_counter()
        for s in lines:
            EteTree(s)
        res["ete3_s_extrapolated"] = (time.perf_counter() - t0) * args.trees / k
        from Bio import Phylo
        t0 = time.perf_counter()
        for s in lines:
            Phylo.read(io.StringIO(s), "newick")
        res["biopython_s_extrapolated"] = (time.perf_counter() - t0) * args.trees / k
        t0 = time.perf_counter()
        a = asdsf([f1, f2], burnin=0.25, minpartfreq=0.10)
        res["asdsf_2x_s"] = time.perf_counter() - t0
        res["asdsf_value"] = a.asdsf
    fast = res["phylo_read_topologies_s"]
    res["ratio_ete3_over_phylo"] = res["ete3_s_extrapolated"] / fast
    res["ratio_biopython_over_phylo"] = res["biopython_s_extrapolated"] / fast
    rt = res["phylo_read_trees_s"]
    res["ratio_ete3_over_read_trees"] = res["ete3_s_extrapolated"] / rt
    res["ratio_biopython_over_read_trees"] = res["biopython_s_extrapolated"] / rt
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree_parsing.json").write_text(json.dumps(res, indent=1))
    md = [f"# Parsing {args.trees} MrBayes .t trees (DS4, 41 taxa, {res['file_mb']:.0f} MB)", "",
          "| parser | seconds | ratio to phylo bulk | ratio to phylo read_trees |",
          "|---|---:|---:|---:|",
          f"| phylo read_topologies (bulk topologies, Numba) | {fast:.2f} | 1 | {fast / rt:.2f} |",
          f"| phylo read_trees (Tree objects with branch lengths, all {args.trees}) | "
          f"{rt:.2f} | {rt / fast:.1f} | 1 |",
          f"| ete3 Tree objects (extrapolated from {k}) | {res['ete3_s_extrapolated']:.1f} | "
          f"{res['ratio_ete3_over_phylo']:.1f} | {res['ratio_ete3_over_read_trees']:.1f} |",
          f"| Biopython Bio.Phylo (extrapolated from {k}) | {res['biopython_s_extrapolated']:.1f} | "
          f"{res['ratio_biopython_over_phylo']:.1f} | {res['ratio_biopython_over_read_trees']:.1f} |", "",
          f"ASDSF of 2 × {args.trees} trees including parsing: {res['asdsf_2x_s']:.2f} s.",
          f"Numba compile/cache load (first call, 50 trees): read_topologies "
          f"{res['compile_or_cache_load_s']:.2f} s, read_trees {res['read_trees_compile_or_cache_load_s']:.2f} s.",
          "Before the batched Numba layout kernel, read_trees took 82.8 s per 100000 trees "
          "(regex parser + Tree.from_parent_array per tree)."]
    (out / "tree_parsing.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
