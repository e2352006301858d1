"""Tree files at scale: one very wide tree, and split work on 10⁴-taxon samples.

1. One 55,000-taxon tree (random, branch lengths): phylo ``read_trees`` and
   ``read_topologies`` against DendroPy's ``Tree.get`` (the issue's peer: 1.5 s; phylo
   took 80-116 s before, a quadratic taxa check).
2. ``asdsf`` on two runs of 50 random 10⁴-taxon trees (100 trees; random trees are the
   worst case: every split distinct), against DendroPy reading the same trees and
   counting their splits (``TreeList`` + ``SplitDistribution``), on a subsample of
   ``--peer-trees`` extrapolated linearly (stated in the output). Before the canonical
   keys and split fingerprints, phylo tried to allocate ~96 GiB here and crashed.

Each measurement runs in its own child process (wall seconds and its peak resident
memory, ``VmHWM``); Numba compilation is loaded from the cache by a warm-up child.
Usage: python benchmarks/tree_scale.py [--wide 55000] [--taxa 10000] [--trees 50]
                                       [--peer-trees 10] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it sets ``out`` (a dict); adds wall and RSS."""
    prog = textwrap.dedent("""
        import json, resource, sys, time
        sys.path.insert(0, %r)
        t0 = time.perf_counter()
        out = {}
    """ % str(REPO)) + textwrap.dedent(code) + textwrap.dedent("""
        out["wall_s"] = time.perf_counter() - t0
        # VmHWM: this process's peak (ru_maxrss would carry the parent's over exec)
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
        out["max_rss_gb"] = (int(hwm[0].split()[1]) / 1e6 if hwm else
                             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def write_trees(path: Path, n_taxa: int, n_trees: int, seed: int) -> None:
    import numpy as np

    from phylo.trees.random import random_tree
    taxa = [f"t{i}" for i in range(n_taxa)]
    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for _ in range(n_trees):
            fh.write(random_tree(taxa, rng=rng).to_newick(precision=6) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wide", type=int, default=55000)
    ap.add_argument("--taxa", type=int, default=10000)
    ap.add_argument("--trees", type=int, default=50, help="trees per run (two runs)")
    ap.add_argument("--peer-trees", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    res = {"benchmark": "tree_scale", "wide_taxa": args.wide, "sample_taxa": args.taxa,
           "trees_per_run": args.trees, "peer_trees": args.peer_trees,
           "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()}
    try:
        import dendropy
        res["dendropy"] = dendropy.__version__
    except ImportError:
        dendropy = None
    with tempfile.TemporaryDirectory() as tmp:
        wide = Path(tmp) / "wide.nwk"
        write_trees(wide, args.wide, 1, 1)
        runs = [Path(tmp) / f"run{r}.nwk" for r in (1, 2)]
        for r, p in enumerate(runs):
            write_trees(p, args.taxa, args.trees, 10 + r)
        small = Path(tmp) / "small.nwk"
        write_trees(small, 20, 3, 3)
        res["warmup"] = child(f"""
            from phylo.diagnostics import asdsf
            from phylo.io.trees import read_topologies, read_trees
            list(read_trees({str(small)!r})); read_topologies({str(small)!r})
            asdsf([{str(small)!r}, {str(small)!r}], burnin=0)
        """)
        res["wide_phylo_read_trees"] = child(f"""
            from phylo.io.trees import read_trees
            t = next(iter(read_trees({str(wide)!r})))
            out["n_leaves"] = t.n_leaves
        """)
        res["wide_phylo_read_topologies"] = child(f"""
            from phylo.io.trees import read_topologies
            out["n_taxa"] = read_topologies({str(wide)!r}).n_taxa
        """)
        if dendropy is not None:
            res["wide_dendropy"] = child(f"""
                import dendropy
                t = dendropy.Tree.get(path={str(wide)!r}, schema="newick")
                out["n_leaves"] = len(t.leaf_nodes())
            """)
        a, b = (str(p) for p in runs)
        res["asdsf_phylo"] = child(f"""
            from phylo.diagnostics import asdsf
            r = asdsf([{a!r}, {b!r}], burnin=0, minpartfreq=0.0)
            out["asdsf"] = r.asdsf
            out["n_splits"] = r.n_splits
        """)
        if dendropy is not None:
            k = args.peer_trees
            res["splits_dendropy_subsample"] = child(f"""
                import itertools
                import dendropy
                ns = dendropy.TaxonNamespace()
                dist = dendropy.SplitDistribution(taxon_namespace=ns)
                n = 0
                for path in ({a!r}, {b!r}):
                    with open(path) as fh:
                        lines = list(itertools.islice(fh, {k} // 2))
                    for line in lines:
                        t = dendropy.Tree.get(data=line, schema="newick", taxon_namespace=ns)
                        t.encode_bipartitions()
                        dist.count_splits_on_tree(t)
                        n += 1
                out["n_trees"] = n
                out["n_splits"] = len(dist.split_counts)
            """)
            d = res["splits_dendropy_subsample"]
            if "wall_s" in d and d.get("n_trees"):
                res["dendropy_splits_s_extrapolated"] = d["wall_s"] * 2 * args.trees / d["n_trees"]
    res["load_average_end"] = os.getloadavg()
    wide_rt = res["wide_phylo_read_trees"].get("wall_s")
    wide_dp = res.get("wide_dendropy", {}).get("wall_s")
    if wide_rt and wide_dp:
        res["ratio_dendropy_over_phylo_wide"] = wide_dp / wide_rt
    ap_s = res["asdsf_phylo"].get("wall_s")
    dp_s = res.get("dendropy_splits_s_extrapolated")
    if ap_s and dp_s:
        res["ratio_dendropy_over_phylo_asdsf"] = dp_s / ap_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree_scale.json").write_text(json.dumps(res, indent=1))

    def cell(d, key):
        v = d.get(key) if isinstance(d, dict) else None
        return "error: " + d["error"] if isinstance(d, dict) and "error" in d else (
            f"{v:.2f}" if isinstance(v, float) else str(v))
    md = [f"# Tree files at scale ({os.cpu_count()} cores, shared; load average "
          f"{res['load_average_start'][0]:.1f} at the start, {res['load_average_end'][0]:.1f} "
          "at the end)", "",
          "| task | wall s | peak RSS GB |", "|---|---:|---:|"]
    for label, key in [(f"phylo read_trees, one {args.wide}-taxon tree", "wide_phylo_read_trees"),
                       (f"phylo read_topologies, same tree", "wide_phylo_read_topologies"),
                       (f"DendroPy Tree.get, same tree", "wide_dendropy"),
                       (f"phylo asdsf, 2 x {args.trees} random {args.taxa}-taxon trees "
                        "(minpartfreq 0, parsing included)", "asdsf_phylo"),
                       (f"DendroPy read + SplitDistribution, {args.peer_trees} of those trees",
                        "splits_dendropy_subsample")]:
        d = res.get(key, {"error": "not run"})
        md.append(f"| {label} | {cell(d, 'wall_s')} | {cell(d, 'max_rss_gb')} |")
    md += ["", f"DendroPy over phylo, wide tree: {res.get('ratio_dendropy_over_phylo_wide', float('nan')):.2f}x; "
           f"split counting of {2 * args.trees} trees (DendroPy extrapolated from "
           f"{args.peer_trees}): {res.get('ratio_dendropy_over_phylo_asdsf', float('nan')):.2f}x.",
           "Before (issue 13): the 55,000-taxon tree took 80-116 s (quadratic taxa check); "
           "asdsf and sbn fit on 10⁴-taxon samples tried to allocate ~96 GiB and crashed."]
    (out / "tree_scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
