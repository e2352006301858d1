"""Model-comparison reports: one data structure, three renderings.

:func:`build_report` turns the tidy rows of a marginal-likelihood comparison into a
plain, JSON-ready ``dict`` (the *report*); :func:`render_html`,
:func:`render_markdown` and :func:`report_json` render it; :func:`write_report`
writes every rendering and the figures into one folder.

Input rows (one per candidate × estimator × repeat; the shape
``phylo.marginal.compare`` returns) carry at least::

    problem (str)  estimator (str)  repeat (int)
    log_marginal_likelihood (float, nats)  std_error (float, nats; NaN if none)
    likelihood_evaluations (int)  seconds (float, wall-clock without Numba compilation)
    compile_seconds (float, optional: time the run spent compiling Numba kernels)

Per-candidate diagnostics (optional, for the plots) map a candidate name to
``{"ladder_betas": (K+1,), "ladder_contributions": (K,), "loglik_trace": (T,)}``.

The report states the priors of the compared posteriors (rows of
:func:`phylo.marginal.priors.prior_table`, given by the caller) and reports the
Numba compilation time apart from the candidates' runtimes (``compile_seconds``).

The report embeds its provenance (:func:`provenance`): phylo and library versions,
the command line, the settings, the seed, the UTC date and the sha256 of every input
file, so that a figure in a paper can be traced back to the run that drew it.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .bayes import KASS_RAFTERY, RESOLVED_Z, bayes_factors, summarize_repeats

REPORT_FORMAT_VERSION = 1

#: Columns of the summary table, in order, with their headers.
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "rank"),
    ("candidate", "candidate"),
    ("log_marginal_likelihood", "ln Z"),
    ("std_error", "SE"),
    ("log_bayes_factor", "ln BF vs best"),
    ("two_ln_bf", "2 ln BF"),
    ("interpretation", "evidence for the best (Kass–Raftery)"),
    ("seconds", "runtime (s, all repeats, without compilation)"),
)


# -- provenance: one record for every command (phylo.provenance) ------------------------
from ..provenance import provenance, sha256_file  # noqa: E402,F401 - re-exported


# -- building -------------------------------------------------------------------------
def build_report(rows: Sequence[Mapping[str, Any]], *,
                 candidates: Sequence[Mapping[str, Any]] | None = None,
                 diagnostics: Mapping[str, Mapping[str, Any]] | None = None,
                 settings: Mapping[str, Any] | None = None,
                 provenance: Mapping[str, Any] | None = None,
                 notes: Sequence[str] = (),
                 expected: Sequence[str] | None = None,
                 priors: Sequence[Mapping[str, Any]] | None = None,
                 title: str = "Model comparison by marginal likelihood") -> dict[str, Any]:
    """Assemble the report ``dict`` from tidy rows.

    Parameters
    ----------
    rows: tidy rows (see the module docstring); several estimators are allowed, the
        Bayes factors are then computed within each estimator.
    candidates: ``[{"name", "model", "tree", ...}]`` describing each candidate
        (any extra keys are kept and shown).
    diagnostics: ``{candidate: {"ladder_betas", "ladder_contributions",
        "loglik_trace"}}`` for the plots (arrays or lists; from the first repeat).
    settings, provenance: shown verbatim (see :func:`provenance`).
    notes: sentences shown under the table (e.g. "the topology is the NJ tree").
    expected: every candidate the run was asked for; those without rows are listed
        as not finished and the report's ``status`` is ``"partial"``.
    priors: ``[{"parameter", "prior", "models"}]`` stating the priors, as
        :func:`phylo.marginal.priors.prior_table` gives them (shown verbatim).

    The report's ``compile_seconds`` is the Numba compilation time of all rows
    (their ``compile_seconds``), which their ``seconds`` exclude.
    """
    rows = [dict(r) for r in rows]
    cand_info = {c["name"]: dict(c) for c in (candidates or [])}
    names_in_rows: list[str] = []
    for r in rows:
        if r["problem"] not in names_in_rows:
            names_in_rows.append(r["problem"])
    order = list(expected) if expected is not None else (
        [c["name"] for c in candidates] if candidates else names_in_rows)
    for n in names_in_rows:
        if n not in order:
            order.append(n)
    estimators: list[str] = []
    for r in rows:
        if r["estimator"] not in estimators:
            estimators.append(r["estimator"])
    summary: list[dict[str, Any]] = []
    for est in estimators:
        means, ses, extra = {}, {}, {}
        for name in order:
            reps = [r for r in rows if r["problem"] == name and r["estimator"] == est]
            if not reps:
                continue
            mean, se, sd = summarize_repeats([r["log_marginal_likelihood"] for r in reps],
                                             [r.get("std_error", math.nan) for r in reps])
            means[name], ses[name] = mean, se
            extra[name] = {
                "repeats": len(reps), "sd_between_repeats": sd,
                "repeat_estimates": [float(r["log_marginal_likelihood"]) for r in reps],
                "seconds": float(sum(float(r.get("seconds", 0.0) or 0.0) for r in reps)),
                "compile_seconds": float(sum(float(r.get("compile_seconds", 0.0) or 0.0)
                                             for r in reps)),
                "likelihood_evaluations": int(sum(int(r.get("likelihood_evaluations", 0) or 0)
                                                  for r in reps)),
            }
        if not means or not any(math.isfinite(v) for v in means.values()):
            continue
        for bf in bayes_factors(means, ses):
            info = cand_info.get(bf.candidate, {})
            summary.append({"estimator": est, **bf.as_dict(), **extra[bf.candidate],
                            "model": info.get("model"), "tree": info.get("tree")})
    missing = [n for n in order if n not in names_in_rows]
    diag_out: dict[str, Any] = {}
    for name, d in (diagnostics or {}).items():
        diag_out[name] = {k: _tolist(v) for k, v in d.items() if v is not None}
    return {
        "report_format": REPORT_FORMAT_VERSION,
        "title": title,
        "status": "partial" if missing else "complete",
        "finished": [n for n in order if n in names_in_rows],
        "missing": missing,
        "estimators": estimators,
        "summary": summary,
        "rows": rows,
        "candidates": [cand_info.get(n, {"name": n}) for n in order],
        "diagnostics": diag_out,
        "settings": dict(settings or {}),
        "provenance": dict(provenance or {}),
        "notes": list(notes),
        "priors": [dict(p) for p in (priors or [])],
        "compile_seconds": float(sum(float(r.get("compile_seconds", 0.0) or 0.0) for r in rows)),
        "kass_raftery": [{"two_ln_bf_at_least": lo, "evidence": name}
                         for lo, name in KASS_RAFTERY],
    }


def _tolist(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_tolist(v) for v in value]
    return value


# -- figures ----------------------------------------------------------------------------
def make_figures(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Draw the report's figures: ``[{"name", "caption", "png", "svg"}]`` (bytes)."""
    from . import plots
    return [{"name": name, "caption": caption, "png": plots.figure_bytes(fig, "png"),
             "svg": plots.figure_bytes(fig, "svg")}
            for name, fig, caption in figure_objects(report)]


def figure_objects(report: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """The report's figures as ``[(name, matplotlib Figure, caption)]``.

    Log Bayes factors against the best with ±2 SE intervals (always, per estimator),
    stepping-stone ladders as one panel a candidate (when candidates have ladders)
    and log-likelihood traces (when candidates have one), candidates in rank order.
    """
    from . import plots
    figures: list[tuple[str, Any, str]] = []

    def add(name: str, fig, caption: str) -> None:
        figures.append((name, fig, caption))

    for est in report["estimators"]:
        rows = [s for s in report["summary"] if s["estimator"] == est]
        if not rows:
            continue
        best = rows[0]["log_marginal_likelihood"]
        fig = plots.plot_bayes_factors(
            [s["candidate"] for s in rows], [s["log_bayes_factor"] for s in rows],
            [rows[0]["std_error"]] + [s["log_bayes_factor_se"] for s in rows[1:]],
            [s["log_marginal_likelihood"] for s in rows],
            {s["candidate"]: [best - v for v in s["repeat_estimates"]] for s in rows},
            estimator=est)
        suffix = "" if len(report["estimators"]) == 1 else f"-{est}"
        add(f"estimates{suffix}", fig,
            f"Log Bayes factor of the best candidate against each candidate ({est}), "
            "ln BF = ln Z_best − ln Z in nats (top axis: 2 ln BF), with ±2 standard-error "
            "intervals of the difference (for the best: of its own ln Z); grey ticks: "
            "single repeats; shading: Kass–Raftery bands (bare mention, positive, strong, "
            "very strong). Candidates far behind are marked ▶ at the edge with their value.")
    diag = report.get("diagnostics", {})
    ranked = list(dict.fromkeys(s["candidate"] for s in report["summary"]))
    ranked += [n for n in diag if n not in ranked]
    ladders = {n: (diag[n]["ladder_betas"], diag[n]["ladder_contributions"]) for n in ranked
               if n in diag and diag[n].get("ladder_betas") and diag[n].get("ladder_contributions")}
    if ladders:
        shown = min(len(ladders), plots.MAX_TRACE_PANELS)
        more = ("" if shown == len(ladders) else
                f" Only the {shown} best-ranked of {len(ladders)} candidates are drawn.")
        add("ladder", plots.plot_ladder(ladders),
            "Stepping-stone ladder of each candidate (first repeat), one panel a "
            "candidate in rank order: the contribution of each rung to ln Z against the "
            "rung's upper β; the title gives ln Z, their sum." + more)
    traces = {n: diag[n]["loglik_trace"] for n in ranked
              if n in diag and diag[n].get("loglik_trace")}
    if traces:
        add("trace", plots.plot_traces(traces),
            "Log-likelihood trace of each candidate's main MCMC chain (first repeat; "
            "for ladder estimators the β = 1 rung): a trend or a jump means the chain "
            "had not converged.")
    return figures


# -- formatting -----------------------------------------------------------------------
def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if key in ("seconds",):
            return f"{value:.1f}"
        if key in ("log_marginal_likelihood", "log_bayes_factor", "two_ln_bf",
                   "std_error", "log_bayes_factor_se", "sd_between_repeats"):
            return f"{value:.2f}"
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cell(row: Mapping[str, Any], key: str) -> str:
    if key == "log_marginal_likelihood":
        return _fmt(row[key], key)
    if key == "log_bayes_factor" and row.get("rank") != 1:
        text = _fmt(row[key], key)
        se = row.get("log_bayes_factor_se")
        if isinstance(se, float) and math.isfinite(se):
            text += f" ± {se:.2f}"
        return text
    if key == "interpretation" and row.get("resolved") is False:
        return f"{row[key]} (within error)"
    return _fmt(row.get(key), key)


def headline(report: Mapping[str, Any]) -> str:
    """One sentence stating the best candidate and the evidence against the runner-up."""
    parts = []
    for est in report["estimators"]:
        rows = [s for s in report["summary"] if s["estimator"] == est]
        if not rows:
            continue
        best = rows[0]
        text = (f"With {est}, the best candidate is {best['candidate']} "
                f"(ln Z = {best['log_marginal_likelihood']:.2f}")
        if math.isfinite(best["std_error"]):
            text += f" ± {best['std_error']:.2f}"
        text += ")"
        if len(rows) > 1 and math.isfinite(rows[1]["log_bayes_factor"]):
            second = rows[1]
            text += (f"; against the runner-up {second['candidate']}, 2 ln BF = "
                     f"{second['two_ln_bf']:.2f}: {second['interpretation']} evidence"
                     if second["interpretation"] != "not worth more than a bare mention"
                     else f"; against the runner-up {second['candidate']}, 2 ln BF = "
                          f"{second['two_ln_bf']:.2f}: not worth more than a bare mention")
            if second.get("resolved") is False:
                text += (f", and the difference is within {RESOLVED_Z} standard errors "
                         "(not resolved by these estimates)")
        parts.append(text + ".")
    return " ".join(parts)


#: The sentence above the priors table.
PRIORS_INTRO = ("Each candidate's marginal likelihood integrates over these priors "
                "(a Bayes factor depends on them): branch lengths and the free "
                "parameters of its substitution model.")


def compile_sentence(report: Mapping[str, Any]) -> str:
    """Where the Numba compilation time went (the runtimes exclude it)."""
    total = float(report.get("compile_seconds", 0.0) or 0.0)
    return (f"Runtimes exclude Numba compilation: this run spent {total:.1f} s compiling "
            "kernels or loading them from the cache (once per process, charged to no "
            "candidate).")


def _html_priors(report: Mapping[str, Any]) -> str:
    if not report.get("priors"):
        return ""
    e = html.escape
    out = [f"<h2>Priors</h2>\n<p>{e(PRIORS_INTRO)}</p>\n<table class=\"priors\" id=\"priors\">"
           "<thead><tr><th>parameter</th><th>prior</th><th>models</th></tr></thead><tbody>\n"]
    for p in report["priors"]:
        out.append(f"<tr><td>{e(str(p.get('parameter')))}</td><td>{e(str(p.get('prior')))}</td>"
                   f"<td>{e(', '.join(map(str, p.get('models', []))))}</td></tr>\n")
    out.append("</tbody></table>\n")
    return "".join(out)


# -- HTML -------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#eef6ee;font-weight:600}
.banner{background:#fff4e5;border:1px solid #f0b060;padding:.6em 1em;margin:1em 0}
.headline{font-size:1.05em;background:#f5f8fc;border-left:4px solid #1f4e79;padding:.6em 1em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}code,pre{font-size:.88em;background:#f6f6f6}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.small{font-size:.85em;color:#555}
"""

# Marks the page once its images have decoded (for headless-browser checks).
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-total', String(imgs.length));
});
"""


def render_html(report: Mapping[str, Any],
                figures: Sequence[Mapping[str, Any]] | None = None) -> str:
    """A self-contained HTML page (inline CSS, figures as base64 PNG, no network)."""
    e = html.escape
    figures = make_figures(report) if figures is None else figures
    out = io.StringIO()
    w = out.write
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
    w(f"<title>{e(report['title'])}</title>\n<meta name=\"generator\" content=\"phylo "
      f"{e(str(report['provenance'].get('phylo_version', '')))}\">\n")
    w(f"<style>{_CSS}</style>\n<script>{_SCRIPT}</script>\n</head><body>\n")
    w(f"<h1>{e(report['title'])}</h1>\n")
    prov = report["provenance"]
    w(f"<p class=\"small\">phylo {e(str(prov.get('phylo_version', '?')))} · "
      f"{e(str(prov.get('date_utc', '')))} UTC · seed {e(str(prov.get('seed')))}</p>\n")
    if report["status"] == "partial":
        w("<div class=\"banner\" id=\"partial\"><strong>Partial report.</strong> The run "
          f"stopped after {len(report['finished'])} of "
          f"{len(report['finished']) + len(report['missing'])} candidates; not finished: "
          f"{e(', '.join(report['missing']))}. Rerun the same command with "
          "<code>--resume</code> to finish.</div>\n")
    if report["summary"]:
        w(f"<p class=\"headline\">{e(headline(report))}</p>\n")
    for est in report["estimators"]:
        rows = [s for s in report["summary"] if s["estimator"] == est]
        w(f"<h2>Candidates ranked by marginal likelihood ({e(est)})</h2>\n")
        w("<table class=\"summary\" id=\"summary-" + e(est) + "\"><thead><tr>")
        for _, header in SUMMARY_COLUMNS:
            w(f"<th>{e(header)}</th>")
        w("</tr></thead><tbody>\n")
        for s in rows:
            w("<tr class=\"best\">" if s["rank"] == 1 else "<tr>")
            for key, _ in SUMMARY_COLUMNS:
                cls = " class=\"num\"" if key not in ("candidate", "interpretation") else ""
                w(f"<td{cls}>{e(_cell(s, key))}</td>")
            w("</tr>\n")
        w("</tbody></table>\n")
    w("<p class=\"small\">ln Z: log marginal likelihood (natural log, nats); SE: its "
      "standard error (between-repeat standard deviation / √repeats when repeats &gt; 1, "
      "else the estimator's own error). ln BF vs best = ln Z<sub>best</sub> − ln Z "
      "(± the error of the difference). Evidence on the 2 ln BF scale after Kass &amp; "
      "Raftery (1995): 0–2 not worth more than a bare mention, 2–6 positive, 6–10 strong, "
      f"&gt;10 very strong; \"within error\": the difference is under {RESOLVED_Z} "
      "standard errors.</p>\n")
    if report["notes"]:
        w("<ul class=\"notes\">" + "".join(f"<li>{e(n)}</li>" for n in report["notes"])
          + "</ul>\n")
    w(f"<p class=\"small\" id=\"compile-time\">{e(compile_sentence(report))}</p>\n")
    if figures:
        w("<h2>Figures</h2>\n")
        for i, f in enumerate(figures, 1):
            data = base64.b64encode(f["png"]).decode("ascii")
            w(f"<figure id=\"fig-{e(f['name'])}\"><img alt=\"{e(f['caption'])}\" "
              f"src=\"data:image/png;base64,{data}\">"
              f"<figcaption>Figure {i}. {e(f['caption'])}</figcaption></figure>\n")
    w("<h2>Candidates</h2>\n<table class=\"candidates\"><thead><tr><th>candidate</th>"
      "<th>model</th><th>topology</th><th>source</th></tr></thead><tbody>\n")
    for c in report["candidates"]:
        w(f"<tr><td>{e(str(c.get('name')))}</td><td>{e(str(c.get('model', '–')))}</td>"
          f"<td><code>{e(str(c.get('tree', '–')))}</code></td>"
          f"<td>{e(str(c.get('tree_source', '–')))}</td></tr>\n")
    w("</tbody></table>\n")
    w(_html_priors(report))
    w("<h2>Settings</h2>\n<table class=\"settings\"><tbody>\n")
    for k, v in report["settings"].items():
        w(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>\n")
    w("</tbody></table>\n")
    w("<h2>All repeats</h2>\n<details><summary>per-repeat estimates "
      f"({len(report['rows'])} rows)</summary>\n")
    w(_html_table(report["rows"], "repeats"))
    w("</details>\n")
    w("<h2>Provenance</h2>\n<table class=\"provenance\"><tbody>\n")
    w(f"<tr><th>command line</th><td><code>{e(str(prov.get('command_line')))}</code></td></tr>\n")
    for k in ("phylo_version", "date_utc", "seed", "platform"):
        w(f"<tr><th>{e(k)}</th><td>{e(str(prov.get(k)))}</td></tr>\n")
    versions = prov.get("versions", {})
    if versions:
        w("<tr><th>versions</th><td>" + e(", ".join(f"{k} {v}" for k, v in versions.items()))
          + "</td></tr>\n")
    for f in prov.get("files", []):
        w(f"<tr><th>input file</th><td><code>{e(str(f['path']))}</code> ({f['bytes']} bytes) "
          f"sha256 <code>{e(f['sha256'])}</code></td></tr>\n")
    w("</tbody></table>\n")
    w("<p class=\"small\">Also written beside this page: report.md, report.json "
      "(every number above, machine-readable), summary.csv and the figures as PNG and "
      "SVG in figures/.</p>\n</body></html>\n")
    return out.getvalue()


def _html_table(rows: Sequence[Mapping[str, Any]], css: str) -> str:
    if not rows:
        return "<p>none</p>\n"
    e = html.escape
    cols = list(rows[0].keys())
    out = [f"<table class=\"{css}\"><thead><tr>"
           + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr></thead><tbody>\n"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{e(_fmt(r.get(c), c))}</td>" for c in cols)
                   + "</tr>\n")
    out.append("</tbody></table>\n")
    return "".join(out)


# -- Markdown ---------------------------------------------------------------------------
def render_markdown(report: Mapping[str, Any],
                    figure_paths: Mapping[str, str] | None = None) -> str:
    """Markdown for a lab notebook or a supplement; figures linked by relative path."""
    md = io.StringIO()
    w = md.write
    prov = report["provenance"]
    w(f"# {report['title']}\n\n")
    w(f"phylo {prov.get('phylo_version', '?')} · {prov.get('date_utc', '')} UTC · "
      f"seed {prov.get('seed')}\n\n")
    if report["status"] == "partial":
        w(f"> **Partial report.** Finished {len(report['finished'])} of "
          f"{len(report['finished']) + len(report['missing'])} candidates; not finished: "
          f"{', '.join(report['missing'])}. Rerun the same command with `--resume`.\n\n")
    if report["summary"]:
        w(headline(report) + "\n\n")
    for est in report["estimators"]:
        rows = [s for s in report["summary"] if s["estimator"] == est]
        w(f"## Candidates ranked by marginal likelihood ({est})\n\n")
        w("| " + " | ".join(h for _, h in SUMMARY_COLUMNS) + " |\n")
        w("|" + "|".join("---:" if k not in ("candidate", "interpretation") else "---"
                         for k, _ in SUMMARY_COLUMNS) + "|\n")
        for s in rows:
            w("| " + " | ".join(_md_escape(_cell(s, k)) for k, _ in SUMMARY_COLUMNS) + " |\n")
        w("\n")
    w("ln Z: log marginal likelihood (nats). SE: between-repeat sd / √repeats (repeats > 1) "
      "or the estimator's own error. Evidence on the 2 ln BF scale after Kass & Raftery "
      "(1995): 0–2 not worth more than a bare mention, 2–6 positive, 6–10 strong, "
      f">10 very strong; \"within error\": under {RESOLVED_Z} standard errors.\n\n")
    for n in report["notes"]:
        w(f"- {n}\n")
    if report["notes"]:
        w("\n")
    w(compile_sentence(report) + "\n\n")
    if figure_paths:
        w("## Figures\n\n")
        for name, path in figure_paths.items():
            w(f"![{name}]({path})\n\n")
    w("## Candidates\n\n| candidate | model | topology | source |\n|---|---|---|---|\n")
    for c in report["candidates"]:
        w(f"| {_md_escape(str(c.get('name')))} | {_md_escape(str(c.get('model', '–')))} | "
          f"`{c.get('tree', '–')}` | {_md_escape(str(c.get('tree_source', '–')))} |\n")
    if report.get("priors"):
        w("\n## Priors\n\n" + PRIORS_INTRO + "\n\n| parameter | prior | models |\n|---|---|---|\n")
        for p in report["priors"]:
            w(f"| {_md_escape(str(p.get('parameter')))} | {_md_escape(str(p.get('prior')))} | "
              f"{_md_escape(', '.join(map(str, p.get('models', []))))} |\n")
    w("\n## Settings\n\n| setting | value |\n|---|---|\n")
    for k, v in report["settings"].items():
        w(f"| {k} | {_md_escape(_fmt(v))} |\n")
    w("\n## Provenance\n\n")
    w(f"- command line: `{prov.get('command_line')}`\n")
    for k in ("phylo_version", "date_utc", "seed", "platform"):
        w(f"- {k}: {prov.get(k)}\n")
    versions = prov.get("versions", {})
    if versions:
        w("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    for f in prov.get("files", []):
        w(f"- input `{f['path']}` ({f['bytes']} bytes), sha256 `{f['sha256']}`\n")
    return md.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


# -- JSON -------------------------------------------------------------------------------
def report_json(report: Mapping[str, Any]) -> str:
    """The report as strict JSON (NaN and infinities become ``null``)."""
    return json.dumps(json_ready(report), indent=1, allow_nan=False) + "\n"


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities as None, NumPy values as Python ones and paths
    as strings: what strict JSON can hold."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "tolist"):
        return json_ready(value.tolist())
    if hasattr(value, "item"):
        return json_ready(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# -- writing ----------------------------------------------------------------------------
def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``report.json``, ``summary.csv`` and
    ``figures/<name>.png|svg`` into ``out_dir`` (created). Each file is written to a
    temporary name and renamed, so a crash never leaves a half-written report.

    Returns ``{"html", "md", "json", "csv", "figures/<name>.png", ...}`` → path.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    figures = make_figures(report)
    paths: dict[str, Path] = {}
    fig_links: dict[str, str] = {}
    for f in figures:
        for ext in ("png", "svg"):
            rel = f"figures/{f['name']}.{ext}"
            _atomic_write(out / rel, f[ext])
            paths[rel] = out / rel
        fig_links[f["caption"]] = f"figures/{f['name']}.png"
    _atomic_write(out / "report.html", render_html(report, figures).encode("utf-8"))
    _atomic_write(out / "report.md", render_markdown(report, fig_links).encode("utf-8"))
    _atomic_write(out / "report.json", report_json(report).encode("utf-8"))
    _atomic_write(out / "summary.csv", summary_csv(report).encode("utf-8"))
    paths.update(html=out / "report.html", md=out / "report.md", json=out / "report.json",
                 csv=out / "summary.csv")
    return paths


#: Columns of ``summary.csv`` (and of ``--format csv`` on stdout).
CSV_COLUMNS = ("estimator", "rank", "candidate", "model", "tree",
               "log_marginal_likelihood", "std_error", "sd_between_repeats", "repeats",
               "log_bayes_factor", "log_bayes_factor_se", "two_ln_bf", "interpretation",
               "resolved", "seconds", "likelihood_evaluations")


def summary_csv(report: Mapping[str, Any]) -> str:
    """The summary table as CSV (full precision; empty cells for unknown values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for s in report["summary"]:
        writer.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v))
                             else repr(v) if isinstance(v, float) else v)
                         for k, v in s.items() if k in CSV_COLUMNS})
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    from ..io.atomic import atomic_write   # the package's one atomic writer
    atomic_write(path, data)
