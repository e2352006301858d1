"""Reports of model comparisons: Bayes factors, figures and HTML/Markdown/JSON pages.

- :mod:`phylo.report.bayes`: log Bayes factors against the best candidate and the
  Kass–Raftery reading (pure functions).
- :mod:`phylo.report.plots`: matplotlib (Agg, no pyplot) figures.
- :mod:`phylo.report.render`: the report ``dict`` and its renderings.
- :mod:`phylo.report.job`: :func:`model_comparison_report`, the whole ``phylo compare``
  job (estimate, checkpoint, write the report) as one library call.

The rendering adds no statistics: it summarises rows computed by
:mod:`phylo.marginal`. Importing it does not import matplotlib (figures are drawn on
demand).
"""
from .bayes import KASS_RAFTERY, bayes_factors, kass_raftery, summarize_repeats
from .job import ComparisonInterrupted, ComparisonReport, model_comparison_report
from .render import (build_report, provenance, render_html, render_markdown,
                     report_json, write_report)

__all__ = ["KASS_RAFTERY", "bayes_factors", "kass_raftery", "summarize_repeats",
           "build_report", "provenance", "render_html", "render_markdown", "report_json",
           "write_report", "model_comparison_report", "ComparisonReport",
           "ComparisonInterrupted"]
