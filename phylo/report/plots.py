"""Report figures with matplotlib's Agg backend (no pyplot, no global state).

Every function takes plain arrays, returns a :class:`matplotlib.figure.Figure`, and
touches neither the screen nor ``matplotlib.pyplot``'s global figure registry, so
reports can be drawn from worker processes and tests. :func:`figure_bytes` turns a
figure into PNG or SVG bytes for embedding.

Units: log marginal likelihoods and log-likelihoods in nats (natural log).
"""
from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Resolution of embedded PNGs (dots per inch): sharp on screen, ~50 kB a figure.
PNG_DPI = 110
#: Above this many candidates the trace plot overlays them in one panel.
MAX_TRACE_PANELS = 12


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """Render ``fig`` as ``png`` or ``svg`` bytes (metadata without a date, so
    the same figure gives the same bytes)."""
    buf = io.BytesIO()
    metadata = {"Software": "phylo"} if fmt == "png" else {"Date": None, "Creator": "phylo"}
    fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buf.getvalue()


def plot_estimates(candidates: Sequence[str], means: Sequence[float],
                   std_errors: Sequence[float],
                   repeats: Mapping[str, Sequence[float]] | None = None,
                   *, estimator: str = "") -> Figure:
    """Log marginal likelihood of each candidate with ±2 standard-error bars (left)
    and ``2 ln BF`` of the best against each candidate on the Kass–Raftery bands
    (right; symmetric-log axis, linear below 10).

    Parameters
    ----------
    candidates: names, shape (C,), drawn top to bottom in this order.
    means: ln Z estimates (nats), shape (C,).
    std_errors: their standard errors (nats), shape (C,); NaN draws no bar.
    repeats: optional ``{candidate: per-repeat estimates}`` drawn as small dots.
    """
    c = len(candidates)
    fig = _new_figure(10.0, 1.3 + 0.45 * max(c, 1))
    ax, axd = fig.subplots(1, 2, width_ratios=(1.0, 1.0))
    y = np.arange(c)[::-1]
    m = np.asarray(means, dtype=float)
    se = np.asarray(std_errors, dtype=float)
    err = np.where(np.isfinite(se), 2.0 * se, 0.0)
    ax.errorbar(m, y, xerr=err, fmt="o", color="#1f4e79", ecolor="#1f4e79",
                capsize=4, label="estimate ± 2 SE", zorder=3)
    if repeats:
        first = True
        for yi, name in zip(y, candidates):
            vals = np.asarray(list(repeats.get(name, ())), dtype=float)
            if vals.size > 1:
                ax.plot(vals, np.full(vals.size, yi) - 0.18, "|", color="#c0504d",
                        markersize=7, label="repeats" if first else None, zorder=2)
                first = False
    finite = m[np.isfinite(m)]
    best = float(finite.max()) if finite.size else math.nan
    if finite.size:
        ax.axvline(best, color="0.6", lw=0.8, ls="--", zorder=1)
    ax.set_yticks(y, list(candidates))
    ax.set_xlabel("log marginal likelihood ln Z (nats)")
    ax.set_title("Estimates" + (f" ({estimator})" if estimator else ""))
    ax.grid(axis="x", color="0.9")
    ax.legend(loc="best", fontsize="small")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    # right: 2 ln BF of the best against each candidate, with Kass-Raftery bands
    two = 2.0 * (best - m)
    best_i = int(np.nanargmax(m)) if finite.size else -1
    se_best = se[best_i] if best_i >= 0 else math.nan
    two_err = np.where(np.isfinite(se) & np.isfinite(se_best),
                       2.0 * 2.0 * np.hypot(se, se_best), 0.0)
    if best_i >= 0:
        two_err[best_i] = 0.0
    bands = ((0, 2, "#f7f7f7"), (2, 6, "#e8f0f8"), (6, 10, "#cfe0f0"))
    top = max(20.0, float(np.nanmax(two + two_err)) * 1.5) if finite.size else 20.0
    for lo, hi, col in bands + ((10, top, "#b0cbe6"),):
        axd.axvspan(lo, hi, color=col, zorder=0, lw=0)
    for x, label in ((1, "bare\nmention"), (4, "positive"), (8, "strong"),
                     (min(top, 10 * 3), "very\nstrong")):
        axd.text(x, c - 0.45, label, ha="center", va="bottom", fontsize="x-small",
                 color="0.35")
    axd.errorbar(two, y, xerr=two_err, fmt="s", color="#c0504d", capsize=4, zorder=3)
    axd.set_xscale("symlog", linthresh=10.0)
    axd.set_xlim(-0.5, top)
    axd.set_ylim(-0.6, c - 0.1 + 0.6)
    axd.set_yticks(y, [""] * c)
    axd.set_xlabel("2 ln BF of the best against the candidate (± 2 SE)")
    axd.set_title("Evidence against each candidate (Kass–Raftery)")
    return fig


def plot_ladder(ladders: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Stepping-stone ladder: each rung's contribution and the running total.

    Parameters
    ----------
    ladders: ``{candidate: (betas, contributions)}`` with ``betas`` the K+1 inverse
        temperatures ``0 = b_0 < ... < b_K = 1`` and ``contributions`` the K rung
        terms ``ln E_{b_{k}}[L^(b_{k+1}-b_k)]`` (nats) whose sum is ln Z.
        Each is plotted against the upper end ``b_{k+1}`` of its rung (log axis).
    """
    fig = _new_figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    for name, (betas, contrib) in ladders.items():
        b = np.asarray(betas, dtype=float)
        cval = np.asarray(contrib, dtype=float)
        upper = b[1:1 + cval.size] if b.size == cval.size + 1 else b[:cval.size]
        left.plot(upper, cval, "o-", ms=3, lw=1, label=name)
        right.plot(upper, np.cumsum(cval), "-", lw=1.2, label=name)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("inverse temperature β (upper end of the rung)")
        ax.grid(color="0.9")
    left.set_ylabel("rung contribution (nats)")
    left.set_title("Contribution of each rung")
    right.set_ylabel("running sum (nats)")
    right.set_title("Running sum → ln Z at β = 1")
    if ladders:
        right.legend(fontsize="x-small", loc="best")
    return fig


def plot_traces(traces: Mapping[str, Sequence[float]], *,
                xlabel: str = "sample") -> Figure:
    """Log-likelihood trace of each candidate's MCMC (nats against sample index).

    Small multiples (one panel a candidate, shared axes off) up to
    :data:`MAX_TRACE_PANELS` candidates; beyond that one panel with all traces.
    """
    names = [n for n in traces if len(traces[n])]
    if not names:
        fig = _new_figure(6.0, 2.0)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no trace recorded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    if len(names) > MAX_TRACE_PANELS:
        fig = _new_figure(9.0, 4.0)
        ax = fig.add_subplot()
        for n in names:
            ax.plot(np.asarray(traces[n], dtype=float), lw=0.6, alpha=0.7, label=n)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("log-likelihood (nats)")
        ax.legend(fontsize="xx-small", ncols=2)
        return fig
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _new_figure(3.2 * ncols, 2.3 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, n in zip(axes, names):
        y = np.asarray(traces[n], dtype=float)
        ax.plot(np.arange(y.size), y, lw=0.5, color="#1f4e79")
        ax.set_title(n, fontsize="small")
        ax.set_xlabel(xlabel, fontsize="x-small")
        ax.set_ylabel("log-likelihood", fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    for ax in axes[len(names):]:
        ax.set_axis_off()
    return fig
