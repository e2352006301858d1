"""Parse 10⁵ MrBayes ``.t`` trees: phylo (bulk topologies and Tree objects) vs ete3 and
Biopython (Bio.Phylo), and ASDSF on 2 × 10⁵ trees including parsing (the two run files
read on two threads, compared with reading them one after the other).

The input is generated from the shared DS4 MrBayes run (41 taxa, 3001 trees per run,
branch lengths, translate table) by repetition into a temporary ``.t`` file. phylo's
``read_trees`` (full ``Tree`` objects: branch lengths, weight, rooting, source) runs on
all trees; the peers (which build full tree objects too) run on a subsample
(``--peer-trees``) and are extrapolated linearly (stated in the output). Numba
compilation is timed separately; phylo's timings are the best of ``--repeats`` (3).

Usage: python benchmarks/tree_parsing.py [--trees 100000] [--peer-trees 3000] [--repeats 3]
                                          [--out DIR]
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


def best_of(fn, k: int):
    """(best seconds, all seconds, last result) of k calls."""
    times = []
    out = None
    for _ in range(k):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), [round(t, 3) for t in times], out


def effective_cores() -> float:
    """How many cores two threads of a GIL-free Numba loop actually get (1.0 .. 2.0):
    the ceiling for reading two runs on two threads on this (shared) machine."""
    import threading

    from numba import njit

    @njit(nogil=True)
    def spin(n):
        s = 0
        x = 1
        for _ in range(n):
            x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFF
            s ^= x
        return s

    spin(10)
    n = 100_000_000
    one, _, _ = best_of(lambda: spin(n), 3)

    def two():
        ths = [threading.Thread(target=spin, args=(n,)) for _ in range(2)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
    both, _, _ = best_of(two, 3)
    return 2 * one / both


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", type=int, default=100000)
    ap.add_argument("--peer-trees", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    from phylo.diagnostics import asdsf, asdsf_from_samples
    from phylo.io.trees import read_topologies, read_trees, tree_file_info
    src = SHARED / "reference" / "DS4_mrbayes_mcmc"
    res = {"benchmark": "tree_parsing", "n_trees": args.trees, "n_taxa": 41,
           "peer_subsample": args.peer_trees, "repeats": args.repeats,
           "cpu_count": os.cpu_count()}
    k_rep = args.repeats
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
        res["phylo_read_topologies_s"], res["phylo_read_topologies_runs"], smp = best_of(
            lambda: read_topologies(f1), k_rep)
        res["distinct_topologies"] = smp.n_topologies
        # Tree objects: every tree, streamed (compile/cache load of its kernel first)
        t0 = time.perf_counter()
        for _ in read_trees(small):
            pass
        res["read_trees_compile_or_cache_load_s"] = time.perf_counter() - t0
        res["phylo_read_trees_s"], res["phylo_read_trees_runs"], n_read = best_of(
            lambda: sum(1 for _ in read_trees(f1)), k_rep)
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
        res["asdsf_2x_s"], res["asdsf_2x_runs"], a = best_of(
            lambda: asdsf([f1, f2], burnin=0.25, minpartfreq=0.10), k_rep)
        res["asdsf_value"] = a.asdsf

        def one_by_one():
            s1 = read_topologies(f1, burnin=0.25, rooted=False)
            s2 = read_topologies(f2, burnin=0.25, rooted=False, taxa=s1.taxa)
            return asdsf_from_samples([s1, s2], minpartfreq=0.10)
        res["asdsf_2x_sequential_s"], res["asdsf_2x_sequential_runs"], b = best_of(
            one_by_one, k_rep)
        assert b.asdsf == a.asdsf and (b.table.freq == a.table.freq).all()
        res["effective_cores_two_threads"] = effective_cores()
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
          f"ASDSF of 2 × {args.trees} trees including parsing: {res['asdsf_2x_s']:.2f} s "
          f"(runs read on two threads; one after the other: "
          f"{res['asdsf_2x_sequential_s']:.2f} s, "
          f"{res['asdsf_2x_sequential_s'] / res['asdsf_2x_s']:.2f}x; same value "
          f"{res['asdsf_value']:.6f}). Two threads of a GIL-free Numba loop got "
          f"{res['effective_cores_two_threads']:.2f} cores' worth of work on this shared "
          "machine during the run (the ceiling of that ratio).", "",
          f"Issue targets (best of {k_rep}; all runs in seconds): parse 10⁵ MrBayes .t "
          f"trees ≤ 2 s: read_topologies {fast:.2f} {res['phylo_read_topologies_runs']}, "
          f"read_trees {rt:.2f} {res['phylo_read_trees_runs']}; ASDSF on 2 × 10⁵ trees "
          f"≤ 3 s: {res['asdsf_2x_s']:.2f} {res['asdsf_2x_runs']} (sequential "
          f"{res['asdsf_2x_sequential_runs']}). Machine: {os.cpu_count()} cores, shared.", "",
          f"Numba compile/cache load (first call, 50 trees): read_topologies "
          f"{res['compile_or_cache_load_s']:.2f} s, read_trees {res['read_trees_compile_or_cache_load_s']:.2f} s.",
          "History (same file): before the batched Numba layout kernel, read_trees took "
          "82.8 s (regex parser + Tree.from_parent_array per tree). Before the block "
          "scanner (a Numba kernel finding the tree statements in 32 MB blocks instead of "
          "a Python loop over lines) and the threaded ASDSF reading, best of 3 on this "
          "machine: read_topologies 1.99 s, read_trees 2.96 s, ASDSF 2 × 10⁵ 3.82 s "
          "(the previous run of this benchmark: 2.00, 2.98, 5.02 s). The one Newick "
          "front end (one grammar for both readers, every branch length converted) took "
          "read_topologies from 0.62 s to 1.31 s on a quiet machine; since it validates "
          "the lengths without building them (same accepted files), skips blanks out of "
          "line and inlines the label lookup and length check, CPU time best of 3 "
          "measured back to back: read_topologies 1.35 -> 0.58 s, read_trees "
          "1.60 -> 1.00 s."]
    (out / "tree_parsing.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
