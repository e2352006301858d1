"""Report renderer, Bayes factors, plots and the headless-Chromium check (phylo.report)."""
from __future__ import annotations

import json
import math
from html import escape as html_escape
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from phylo.errors import ReportError
from phylo.report import bayes_factors, build_report, kass_raftery, provenance, write_report
from phylo.report.bayes import RESOLVED_Z, summarize_repeats
from phylo.marginal.priors import default_model_priors, prior_table
from phylo.report import plots
from phylo.report.render import (figure_objects, make_figures, render_html, render_markdown,
                                 report_json)

#: Exact float identities (sums/differences of a few doubles).
EXACT = 1e-12
#: Chromium may need this long to start cold on a loaded 2-core machine.
CHROMIUM_TIMEOUT_S = 120
#: A ±2 SE interval in Figure 1 must be at least this wide on the embedded PNG (pixels
#: at plots.PNG_DPI) to be seen; on a ln Z axis spanning 110 nats the synthetic
#: report's intervals (~1 nat) were ~7 px wide, on the ln BF axis they are > 100 px.
MIN_INTERVAL_PX = 20
#: Compilation charged to the synthetic report's first row (the ~36 s a cold Numba
#: cache costs the first candidate).
SYNTHETIC_COMPILE_S = 36.0


# -- Kass–Raftery and Bayes factors -------------------------------------------------
@pytest.mark.parametrize("two_ln_bf, expected", [
    (0.0, "not worth more than a bare mention"),
    (1.99, "not worth more than a bare mention"),
    (2.0, "positive"), (5.9, "positive"),
    (6.0, "strong"), (9.99, "strong"),
    (10.0, "very strong"), (1e6, "very strong"),
    (-7.0, "strong"),           # symmetric: the evidence then favours the other one
    (math.nan, "undetermined"),
])
def test_kass_raftery_categories(two_ln_bf, expected):
    assert kass_raftery(two_ln_bf) == expected


def test_bayes_factors_against_best():
    rows = bayes_factors({"a": -100.0, "b": -98.0, "c": -110.0, "d": -98.5},
                         {"a": 0.3, "b": 0.4, "c": 0.1, "d": 0.4})
    assert [r.candidate for r in rows] == ["b", "d", "a", "c"]
    assert [r.rank for r in rows] == [1, 2, 3, 4]
    best, d, a, c = rows
    assert best.log_bayes_factor == 0.0 and best.interpretation == "best"
    assert best.resolved is None
    assert abs(a.log_bayes_factor - 2.0) < EXACT and abs(a.two_ln_bf - 4.0) < EXACT
    assert a.interpretation == "positive"
    assert abs(a.log_bayes_factor_se - 0.5) < EXACT        # hypot(0.3, 0.4)
    assert a.resolved is True                                # 2.0 > 1.96 * 0.5
    assert d.interpretation == "not worth more than a bare mention"
    assert d.resolved is False                               # 0.5 < 1.96 * hypot(.4,.4)
    assert c.two_ln_bf == pytest.approx(24.0) and c.interpretation == "very strong"


def test_bayes_factors_unknown_errors_and_nan():
    rows = bayes_factors({"x": -5.0, "y": float("nan"), "z": -9.0})
    assert [r.candidate for r in rows] == ["x", "z", "y"]
    assert math.isnan(rows[1].log_bayes_factor_se) and rows[1].resolved is None
    assert rows[1].interpretation == "strong"                # 2 * 4 = 8
    assert math.isnan(rows[2].log_bayes_factor) and rows[2].interpretation == "undetermined"
    with pytest.raises(ReportError, match="at least one candidate"):
        bayes_factors({})
    with pytest.raises(ReportError, match="finite"):
        bayes_factors({"x": float("nan")})


def test_bayes_factor_resolution_threshold():
    lbf_se = math.hypot(1.0, 1.0)
    just_below = bayes_factors({"a": 0.0, "b": -(RESOLVED_Z * lbf_se - 1e-9)},
                               {"a": 1.0, "b": 1.0})
    assert just_below[1].resolved is False


def test_summarize_repeats():
    mean, se, sd = summarize_repeats([1.0, 2.0, 3.0], [9.0, 9.0, 9.0])
    assert mean == 2.0 and abs(sd - 1.0) < EXACT and abs(se - 1.0 / math.sqrt(3)) < EXACT
    mean, se, sd = summarize_repeats([4.0], [0.25])
    assert (mean, se) == (4.0, 0.25) and math.isnan(sd)
    assert all(math.isnan(v) for v in summarize_repeats([float("nan")]))


# -- building and rendering ------------------------------------------------------------
def synthetic_rows(seed: int = 3, repeats: int = 2):
    """Tidy rows and diagnostics shaped like ``phylo.marginal.compare`` output."""
    rng = np.random.default_rng(seed)
    truth = {"JC69 on true": -5230.0, "HKY+G4 on true": -5120.0, "HKY+G4 on nni1": -5124.0}
    rows, diag = [], {}
    for name, z in truth.items():
        for r in range(repeats):
            rows.append({"problem": name, "estimator": "stepping-stone", "repeat": r,
                         "log_marginal_likelihood": z + rng.normal(0, 0.3), "std_error": 0.2,
                         "likelihood_evaluations": 1000, "seconds": 1.5,
                         "compile_seconds": SYNTHETIC_COMPILE_S if not rows else 0.0})
        betas = np.linspace(0.0, 1.0, 9) ** (1 / 0.3)
        diag[name] = {"ladder_betas": betas,
                      "ladder_contributions": np.diff(betas) * z,
                      "loglik_trace": z + rng.normal(0, 2, 200)}
    return rows, diag, truth


@pytest.fixture(scope="module")
def report():
    rows, diag, truth = synthetic_rows()
    cands = [{"name": n, "model": n.split(" on ")[0], "tree": "((a,b),c,d);",
              "tree_source": "x.nwk"} for n in truth]
    return build_report(rows, candidates=cands, diagnostics=diag,
                        priors=prior_table({c["model"]: c["model"] for c in cands}),
                        settings={"estimator": "stepping-stone", "steps": 8, "repeats": 2},
                        provenance=provenance(command_line=["phylo", "compare", "x <y>"],
                                              seed=5),
                        notes=["note <b>escaped</b>"], expected=list(truth) + ["GTR on true"])


def test_build_report_summary(report):
    assert report["status"] == "partial" and report["missing"] == ["GTR on true"]
    names = [s["candidate"] for s in report["summary"]]
    assert names == ["HKY+G4 on true", "HKY+G4 on nni1", "JC69 on true"]
    top = report["summary"][0]
    reps = [r["log_marginal_likelihood"] for r in report["rows"] if r["problem"] == names[0]]
    assert abs(top["log_marginal_likelihood"] - np.mean(reps)) < EXACT
    assert top["repeats"] == 2 and top["seconds"] == 3.0
    second = report["summary"][1]
    assert abs(second["log_bayes_factor"]
               - (top["log_marginal_likelihood"] - second["log_marginal_likelihood"])) < EXACT
    assert second["interpretation"] in ("strong", "positive", "very strong")
    assert report["summary"][2]["interpretation"] == "very strong"


def test_report_json_is_strict_and_roundtrips(report):
    text = report_json(report)
    data = json.loads(text)                       # no NaN tokens: strict JSON
    assert "NaN" not in text
    assert data["summary"][0]["candidate"] == "HKY+G4 on true"
    assert data["provenance"]["seed"] == 5
    assert len(data["diagnostics"]["JC69 on true"]["ladder_betas"]) == 9


def test_render_html_self_contained_and_escaped(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "note &lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    assert "x &lt;y&gt;" in page or "&#x27;x &lt;y&gt;&#x27;" in page
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 3
    assert not re.search(r'(src|href)="(https?:)?//', page)      # nothing fetched
    assert "Partial report" in page and "--resume" in page
    assert page.count("<tr class=\"best\">") == 1


def test_render_markdown(report):
    md = render_markdown(report, {"Estimates": "figures/estimates.png"})
    assert "| rank | candidate | ln Z |" in md
    assert "![Estimates](figures/estimates.png)" in md
    assert "Partial report" in md and "sha256" not in md.split("## Provenance")[0]


def _pixel_widths(fig, gid: str) -> list[float]:
    """Widths in PNG pixels of the horizontal segments of the artists tagged ``gid``."""
    fig.set_dpi(plots.PNG_DPI)
    fig.canvas.draw()
    widths = []
    for ax in fig.axes:
        for coll in ax.collections:
            if coll.get_gid() != gid:
                continue
            for seg in coll.get_segments():
                px = ax.transData.transform(np.asarray(seg))
                widths.append(float(abs(px[1, 0] - px[0, 0])))
    return widths


def test_figure1_intervals_show_on_the_log_bayes_factor_axis(report):
    name, fig, caption = figure_objects(report)[0]
    assert name == "estimates" and "±2 standard-error" in caption
    ax = fig.axes[0]
    assert "ln BF" in ax.get_xlabel() and "ln Z_best − ln Z" in ax.get_xlabel()
    lo, hi = ax.get_xlim()
    assert lo < 0.0 < hi <= plots.FAR_NATS + 5       # relative scale, not absolute ln Z
    widths = _pixel_widths(fig, "se-intervals")
    # the runner-up HKY+G4 on nni1 is ~4 nats behind: its interval is on the axis;
    # JC69 (110 nats behind) is off scale, written out instead of squeezing the rest
    assert len(widths) == 1 and widths[0] >= MIN_INTERVAL_PX, widths
    best = _pixel_widths(fig, "best-interval")
    assert len(best) == 1 and best[0] >= 0.5 * MIN_INTERVAL_PX, best
    off = [t.get_text() for t in ax.texts if "off scale" in t.get_text()]
    jc = next(r for r in report["summary"] if r["candidate"] == "JC69 on true")
    assert off == [f"ln BF = {jc['log_bayes_factor']:.1f} ± {2 * jc['log_bayes_factor_se']:.1f} "
                   "(off scale)"]
    # the interval drawn is the estimate ± 2 SE of the difference
    second = report["summary"][1]
    fig.set_dpi(plots.PNG_DPI)
    seg = next(c for c in ax.collections if c.get_gid() == "se-intervals").get_segments()[0]
    assert abs(seg[0][0] - (second["log_bayes_factor"] - 2 * second["log_bayes_factor_se"])) < EXACT
    assert abs(seg[1][0] - (second["log_bayes_factor"] + 2 * second["log_bayes_factor_se"])) < EXACT


def test_figure1_intervals_when_all_candidates_are_close():
    fig = plots.plot_bayes_factors(["a", "b", "c"], [0.0, 0.4, 1.1], [0.3, 0.35, 0.5],
                                   [-10.0, -10.4, -11.1])
    widths = _pixel_widths(fig, "se-intervals")
    assert len(widths) == 2 and min(widths) >= MIN_INTERVAL_PX
    assert not [t for t in fig.axes[0].texts if "off scale" in t.get_text()]


def test_figure2_one_panel_per_candidate(report):
    figs = {name: fig for name, fig, _ in figure_objects(report)}
    ladder = figs["ladder"]
    assert len(ladder.axes) == 3                       # small multiples, no blank panels
    ranked = [s["candidate"] for s in report["summary"]]
    titles = [ax.get_title().split("\n")[0] for ax in ladder.axes]
    assert titles == ranked                            # in rank order
    for ax, name in zip(ladder.axes, ranked):
        assert len(ax.get_lines()) == 1                # one curve: nothing overlaps
        contrib = report["diagnostics"][name]["ladder_contributions"]
        assert ax.get_title().endswith(f"ln Z = {sum(contrib):.2f}")
    assert len(figs["trace"].axes) == 3


def test_priors_stated_from_the_library(report):
    kappa = default_model_priors(("kappa",))["kappa"].describe()
    gamma = default_model_priors(("gamma_shape",))["gamma_shape"].describe()
    freqs = default_model_priors(("frequencies",))["frequencies"].describe()
    assert "LogNormal" in kappa and "Dirichlet(1, 1, 1, 1)" in freqs and "Exponential" in gamma
    page = render_html(report)
    priors_html = re.search(r'<table class="priors" id="priors">(.*?)</table>', page, re.S)
    assert priors_html, "no priors table in the HTML report"
    for text in (kappa, gamma, freqs, "i.i.d. Exponential(rate 10), mean 0.1"):
        assert html_escape(text) in priors_html.group(1)
    assert "Dirichlet(1, 1, 1, 1, 1, 1)" not in page    # no GTR candidate here
    md = render_markdown(report)
    assert "## Priors" in md and kappa in md and gamma in md
    data = json.loads(report_json(report))
    rows = {p["parameter"].split(" (")[0]: p for p in data["priors"]}
    assert rows["κ"]["prior"] == kappa and rows["κ"]["models"] == ["HKY+G4"]
    assert rows["branch lengths"]["models"] == ["JC69", "HKY+G4"]
    gtr = prior_table(["GTR+I+G4"])
    assert [p["parameter"].split(" ")[0] for p in gtr] == ["branch", "GTR", "base", "Γ",
                                                           "proportion"]


def test_compile_time_reported_apart_from_runtimes(report):
    assert report["compile_seconds"] == SYNTHETIC_COMPILE_S
    first = report["summary"][0]
    own = [r for r in report["rows"] if r["problem"] == first["candidate"]]
    assert first["seconds"] == sum(r["seconds"] for r in own) == 3.0    # compilation apart
    jc = next(s for s in report["summary"] if s["candidate"] == "JC69 on true")
    assert jc["compile_seconds"] == SYNTHETIC_COMPILE_S and jc["seconds"] == 3.0
    page = render_html(report)
    assert f"spent {SYNTHETIC_COMPILE_S:.1f} s compiling" in page
    assert "runtime (s, all repeats, without compilation)" in page
    assert f"spent {SYNTHETIC_COMPILE_S:.1f} s compiling" in render_markdown(report)


def test_figures_without_diagnostics():
    rows, _, _ = synthetic_rows(repeats=1)
    rep = build_report(rows)
    figs = make_figures(rep)
    assert [f["name"] for f in figs] == ["estimates"]
    assert figs[0]["png"].startswith(b"\x89PNG") and b"<svg" in figs[0]["svg"]
    assert rep["status"] == "complete"


def test_write_report_files_and_provenance(tmp_path):
    rows, diag, _ = synthetic_rows()
    data = tmp_path / "aln.fasta"
    data.write_text(">a\nACGT\n>b\nACGA\n")
    prov = provenance(command_line="phylo compare aln.fasta", files=[data], seed=9)
    rep = build_report(rows, diagnostics=diag, provenance=prov, settings={"seed": 9})
    paths = write_report(rep, tmp_path / "out")
    for key in ("html", "md", "json", "csv"):
        assert paths[key].stat().st_size > 0
    for name in ("estimates", "ladder", "trace"):
        assert (tmp_path / "out" / "figures" / f"{name}.png").exists()
        assert (tmp_path / "out" / "figures" / f"{name}.svg").exists()
    saved = json.loads(paths["json"].read_text())
    import hashlib
    assert saved["provenance"]["files"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert saved["provenance"]["phylo_version"]
    assert saved["provenance"]["date_utc"].endswith("+00:00")
    csv_lines = paths["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("estimator,rank,candidate") and len(csv_lines) == 4
    assert not list((tmp_path / "out").glob("*.tmp"))


# -- headless Chromium ----------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_dump_dom(html_path: Path, tmp_path: Path, screenshot: Path | None = None) -> str:
    """Load a page in headless Chromium; return the DOM after scripts ran."""
    exe = _chromium()
    if exe is None:
        reason = "chromium not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("PHYLO_REQUIRE_ALL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1200,2000"]
    url = html_path.resolve().as_uri()
    if screenshot is not None:
        subprocess.run(base + [f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=CHROMIUM_TIMEOUT_S, check=False)
    done = subprocess.run(base + ["--virtual-time-budget=5000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def check_report_dom(dom: str, n_candidates: int) -> None:
    """The DOM has the ranked table with one row per candidate and decoded images."""
    table = re.search(r'<table class="summary"[^>]*>(.*?)</table>', dom, re.S)
    assert table, "summary table missing from the rendered page"
    assert len(re.findall(r"<tr[ >]", table.group(1))) == n_candidates + 1  # + header
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, "the page's load script did not run"
    assert int(total.group(1)) >= 1 and loaded.group(1) == total.group(1)


def test_html_report_in_headless_chromium(tmp_path, report):
    paths = write_report(report, tmp_path / "out")
    shot = tmp_path / "shot.png"
    dom = chromium_dump_dom(paths["html"], tmp_path, screenshot=shot)
    check_report_dom(dom, n_candidates=3)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
    assert re.search(r'<table class="priors" id="priors">.*LogNormal.*</table>', dom, re.S)
    assert re.search(r'id="compile-time">[^<]*36\.0 s compiling', dom)
    assert re.search(r'<figure id="fig-ladder">.*one panel a\s+candidate', dom, re.S)
