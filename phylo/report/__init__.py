"""Reports of model comparisons: Bayes factors, figures and HTML/Markdown/JSON pages.

- :mod:`phylo.report.bayes`: log Bayes factors against the best candidate and the
  Kass–Raftery reading (pure functions).
- :mod:`phylo.report.plots`: matplotlib (Agg, no pyplot) figures.
- :mod:`phylo.report.render`: the report ``dict`` and its renderings.

This package adds no statistics: it summarises rows computed by
:mod:`phylo.marginal`. Importing it does not import matplotlib (figures are drawn on
demand).
"""
from .bayes import KASS_RAFTERY, bayes_factors, kass_raftery, summarize_repeats
from .render import (build_report, provenance, render_html, render_markdown,
                     report_json, write_report)

__all__ = ["KASS_RAFTERY", "bayes_factors", "kass_raftery", "summarize_repeats",
           "build_report", "provenance", "render_html", "render_markdown", "report_json",
           "write_report"]
