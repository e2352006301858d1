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


#: Candidates at most this far behind the best (ln BF, nats; 2 ln BF = 40, four times
#: Kass and Raftery's "very strong" bound) set the scale of the Bayes-factor plot;
#: those further away are drawn at its right edge with their value written out, so
#: that one hopeless candidate does not squeeze every interval to a dot.
FAR_NATS = 20.0
#: The Bayes-factor axis spans at least this many nats (the Kass–Raftery bands
#: 2 ln BF = 2, 6, 10 lie at ln BF = 1, 3, 5).
MIN_WINDOW_NATS = 6.0
#: Kass–Raftery boundaries on the ln BF scale (nats) with the shade of the band above
#: each (lower bound, label, colour), weakest first.
_BANDS = ((0.0, "bare mention", "#f7f7f7"), (1.0, "positive", "#e8f0f8"),
          (3.0, "strong", "#cfe0f0"), (5.0, "very strong", "#b0cbe6"))


def plot_bayes_factors(candidates: Sequence[str], log_bayes_factors: Sequence[float],
                       std_errors: Sequence[float], log_marginal_likelihoods: Sequence[float],
                       repeats: Mapping[str, Sequence[float]] | None = None,
                       *, estimator: str = "") -> Figure:
    """Interval plot of the log Bayes factor of the best candidate against each one.

    x = ln BF = ln Z_best − ln Z_i (nats, 0 for the best) with ±2 standard-error
    intervals: for the best its own ln Z error, for the others the error of the
    difference. The axis is linear and spans the candidates within
    :data:`FAR_NATS` of the best (at least :data:`MIN_WINDOW_NATS`), so that the
    intervals show; the others sit at the right edge as ▶ with their ln BF ± 2 SE
    written beside. The Kass–Raftery bands shade the background and the top axis
    reads 2 ln BF.

    Parameters
    ----------
    candidates: names in rank order (best first), shape (C,), drawn top to bottom.
    log_bayes_factors: ln BF of the best against each (nats, ≥ 0), shape (C,).
    std_errors: for the best, the standard error of its ln Z; for the others, that of
        the difference (nats), shape (C,); NaN draws no interval.
    log_marginal_likelihoods: ln Z of each (nats), shape (C,), written in the labels.
    repeats: optional ``{candidate: per-repeat ln BF against the best's mean}`` drawn
        as ticks under the interval.

    Artists: the intervals of the non-best candidates have gid ``"se-intervals"``,
    the best's ``"best-interval"`` (tests measure them in pixels).
    """
    c = len(candidates)
    lbf = np.asarray(log_bayes_factors, dtype=float)
    se = np.asarray(std_errors, dtype=float)
    lnz = np.asarray(log_marginal_likelihoods, dtype=float)
    two_se = np.where(np.isfinite(se), 2.0 * se, 0.0)
    near = np.isfinite(lbf) & (lbf <= FAR_NATS)
    reach = float(np.max(lbf[near] + two_se[near])) if near.any() else 0.0
    x_hi = max(MIN_WINDOW_NATS, 1.08 * reach + 0.2)
    inside = near & (lbf + two_se <= x_hi)
    far = np.isfinite(lbf) & ~inside
    x_lo = -max(0.04 * x_hi, 1.3 * float(two_se[0]) if c else 0.0)
    fig = _new_figure(9.5, 1.5 + 0.5 * max(c, 1))
    ax = fig.add_subplot()
    y = np.arange(c)[::-1].astype(float)
    for k, (lo, label, colour) in enumerate(_BANDS):
        hi = _BANDS[k + 1][0] if k + 1 < len(_BANDS) else max(x_hi, 6.0)
        ax.axvspan(lo, hi, color=colour, zorder=0, lw=0)
        if lo < x_hi:
            ax.text(0.5 * (lo + min(hi, x_hi)), c - 0.42, label, ha="center", va="bottom",
                    fontsize="x-small", color="0.35")
    ax.axvline(0.0, color="0.55", lw=0.8, ls="--", zorder=1)
    if c:
        best = ax.errorbar(lbf[:1], y[:1], xerr=two_se[:1], fmt="D", color="#2e7d32",
                           ecolor="#2e7d32", capsize=5, elinewidth=2, zorder=4,
                           label="best: its ln Z ± 2 SE")
        for coll in best.lines[2]:
            coll.set_gid("best-interval")
    rest = np.flatnonzero(inside[1:]) + 1          # every candidate but the best
    if rest.size:
        bars = ax.errorbar(lbf[rest], y[rest], xerr=two_se[rest], fmt="o", color="#1f4e79",
                           ecolor="#1f4e79", capsize=5, elinewidth=2, zorder=4,
                           label="ln BF ± 2 SE of the difference")
        for coll in bars.lines[2]:
            coll.set_gid("se-intervals")
    for i in np.flatnonzero(far):
        ax.plot([x_hi], [y[i]], ">", color="#c0504d", ms=9, clip_on=False, zorder=5)
        ax.text(x_hi - 0.015 * (x_hi - x_lo), y[i] + 0.12,
                f"ln BF = {lbf[i]:.1f} ± {two_se[i]:.1f} (off scale)", ha="right",
                va="bottom", fontsize="small", color="#c0504d")
    if repeats:
        first = True
        for i, name in enumerate(candidates):
            vals = np.asarray(list(repeats.get(name, ())), dtype=float)
            vals = vals[np.isfinite(vals) & (vals >= x_lo) & (vals <= x_hi)]
            if vals.size > 1 and not far[i]:
                ax.plot(vals, np.full(vals.size, y[i]) - 0.22, "|", color="#7f7f7f",
                        markersize=7, label="single repeats" if first else None, zorder=3)
                first = False
    labels = [f"{n}\nln Z = {z:.2f}" if math.isfinite(z) else f"{n}\nln Z unknown"
              for n, z in zip(candidates, lnz)]
    ax.set_yticks(y, labels, fontsize="small")
    ax.set_ylim(-0.7, c - 0.05)
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel("ln BF of the best against the candidate = ln Z_best − ln Z (nats)")
    top = ax.secondary_xaxis("top", functions=(lambda v: 2.0 * v, lambda v: 0.5 * v))
    top.set_xlabel("2 ln BF (Kass–Raftery scale)", fontsize="small")
    ax.set_title("Evidence against each candidate" + (f" ({estimator})" if estimator else ""),
                 fontsize="medium")
    ax.grid(axis="x", color="0.85", zorder=1)
    handles, names = ax.get_legend_handles_labels()
    if handles:   # below the axes: inside, it would hide an interval or a far label
        fig.legend(handles, names, loc="outside lower center", ncols=len(handles),
                   fontsize="x-small", frameon=False)
    return fig


def plot_ladder(ladders: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Stepping-stone ladders as small multiples: one panel a candidate.

    Each panel shows the contribution of every rung to ln Z against the rung's upper
    inverse temperature (log axis), with ln Z (their sum) in the title; panels keep
    their own y scale, so that an odd rung shows in any of them.

    Parameters
    ----------
    ladders: ``{candidate: (betas, contributions)}`` in the order to draw, with
        ``betas`` the K+1 inverse temperatures ``0 = b_0 < ... < b_K = 1`` and
        ``contributions`` the K rung terms ``ln E_{b_{k}}[L^(b_{k+1}-b_k)]`` (nats)
        whose sum is ln Z. At most :data:`MAX_TRACE_PANELS` are drawn (the first).
    """
    names = list(ladders)[:MAX_TRACE_PANELS]
    if not names:
        fig = _new_figure(6.0, 2.0)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no ladder recorded", ha="center", va="center")
        ax.set_axis_off()
        return fig
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _new_figure(3.3 * ncols, 2.5 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).ravel()
    for ax, name in zip(axes, names):
        betas, contrib = ladders[name]
        b = np.asarray(betas, dtype=float)
        cval = np.asarray(contrib, dtype=float)
        upper = b[1:1 + cval.size] if b.size == cval.size + 1 else b[:cval.size]
        ax.plot(upper, cval, "o-", ms=3, lw=1, color="#1f4e79")
        ax.set_xscale("log")
        ax.set_title(f"{name}\nln Z = {float(np.sum(cval)):.2f}", fontsize="small")
        ax.set_xlabel("β (upper end of the rung)", fontsize="x-small")
        ax.set_ylabel("rung contribution (nats)", fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        ax.grid(color="0.9")
    for ax in axes[len(names):]:
        ax.remove()
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
        ax.remove()
    return fig
