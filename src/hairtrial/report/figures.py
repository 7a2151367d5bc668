"""The report's figures, drawn with matplotlib (Agg) into PNG bytes.

Every function takes plain DataFrames whose arm labels are already the ones to show (see
:mod:`hairtrial.report.blinding`) and returns PNG bytes. Drawing is deterministic: a fixed
font (DejaVu Sans, shipped with matplotlib), fixed sizes and DPI, no pyplot state and no
``Software`` metadata, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hairtrial.report.model import iter_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Okabe–Ito colours, in arm display order, then responders / non-responders.
ARM_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")
_RESPONDER = "#D55E00"
_OTHER = "#999999"
_LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)))
_DPI = 110
_MARGINS = {"left": 0.09, "right": 0.97, "bottom": 0.16, "top": 0.86, "wspace": 0.3}
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e0e0e0",
    "grid.linewidth": 0.6,
    "svg.hashsalt": "hairtrial",
    "path.simplify": True,
}


def _render(
    width_in: float,
    height_in: float,
    draw: Callable[[Figure], None],
    *,
    margins: Mapping[str, float] | None = None,
) -> bytes:
    """Draw on a fresh Agg figure and return PNG bytes (no timestamp, no software tag).

    Margins are fixed (fractions of the figure) rather than computed by a layout engine:
    faster, and the figure's geometry cannot shift with its data.
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]
        fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(**{**_MARGINS, **(margins or {})})
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _no_data(ax: Axes, text: str = "not available") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _days_axis(ax: Axes, days: Sequence[int]) -> None:
    ax.set_xlabel("visit day")
    if len(days):
        ax.set_xticks(sorted({int(d) for d in days}))


def time_course_figure(
    *,
    title: str,
    unit: str,
    arm_means: pd.DataFrame,
    arm_order: Sequence[str],
    effects: pd.DataFrame | None,
    difference: str,
    ci_percent: float = 95.0,
) -> bytes:
    """Change from baseline per arm, and the model's between-arm effect, per visit.

    Parameters
    ----------
    title : str
        Endpoint name shown.
    unit : str
        Unit suffix for the y axes (e.g. ``" µm"``; empty for fractions).
    arm_means : DataFrame
        ``arm, visit_day, mean, ci_low, ci_high, n``: mean change from baseline per arm
        label and visit with its confidence interval.
    arm_order : sequence of str
        Arm labels in display order (fixes the colours).
    effects : DataFrame or None
        ``visit_day, estimate, ci_low, ci_high, p``: the between-arm difference
        (`difference`) in the endpoint at each visit from the mixed model; ``None`` when
        not available.
    difference : str
        Label of the difference, e.g. ``Arm A − Arm B``.
    ci_percent : float, %
        Confidence level of the intervals, for the labels.

    Returns
    -------
    bytes
        PNG image.
    """

    def draw(fig: Figure) -> None:
        left, right = fig.subplots(1, 2)
        days = sorted({int(d) for d in arm_means["visit_day"]}) if len(arm_means) else []
        step = (max(days) - min(days)) * 0.012 if len(days) > 1 else 0.5
        for i, arm in enumerate(arm_order):
            rows = arm_means[arm_means["arm"] == arm].sort_values("visit_day")
            if rows.empty:
                continue
            x = rows["visit_day"].to_numpy(dtype=float) + (i - (len(arm_order) - 1) / 2) * step
            y = rows["mean"].to_numpy(dtype=float)
            err = np.vstack(
                [y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y]
            )
            left.errorbar(
                x,
                y,
                yerr=np.nan_to_num(err),
                marker="o",
                ms=4,
                capsize=3,
                lw=1.4,
                color=ARM_COLOURS[i % len(ARM_COLOURS)],
                label=arm,
            )
        if len(arm_means):
            left.axhline(0.0, color="#444444", lw=0.8)
            left.legend(loc="best", frameon=False)
            _days_axis(left, days)
        else:
            _no_data(left)
        left.set_title(f"change from baseline (mean, {ci_percent:g} % CI)")
        left.set_ylabel(f"Δ {title}{_unit(unit)}")
        left.set_axisbelow(True)
        if effects is not None and len(effects):
            e = effects.sort_values("visit_day")
            x = e["visit_day"].to_numpy(dtype=float)
            y = e["estimate"].to_numpy(dtype=float)
            err = np.vstack([y - e["ci_low"].to_numpy(float), e["ci_high"].to_numpy(float) - y])
            right.errorbar(
                x, y, yerr=np.nan_to_num(err), marker="s", ms=4, capsize=3, lw=1.4, color="#333333"
            )
            right.axhline(0.0, color="#444444", lw=0.8)
            _days_axis(right, list(x.astype(int)))
        else:
            _no_data(right, "mixed model not available")
        right.set_title(f"mixed model: {difference} at each visit ({ci_percent:g} % CI)")
        right.set_ylabel(f"difference{_unit(unit)}")
        right.set_axisbelow(True)
        fig.suptitle(title, fontsize=11)

    return _render(8.0, 3.3, draw)


def forest_figure(
    *,
    effects: pd.DataFrame,
    interaction: pd.DataFrame,
    difference: str,
    ci_percent: float = 95.0,
) -> bytes:
    """Subgroup forest plot: between-arm diameter change by baseline-diameter subgroup.

    Parameters
    ----------
    effects : DataFrame
        ``level, subgroup, visit_day, n, estimate, ci_low, ci_high, p`` (µm), already
        expressed as `difference`.
    interaction : DataFrame
        ``level, visit_day, p_interaction``: the subgroup-by-arm interaction test.
    difference : str
        Label of the difference.
    ci_percent : float, %
        Confidence level, for the axis label.

    Returns
    -------
    bytes
        PNG image.
    """
    rows = effects.sort_values(["level", "visit_day", "subgroup"]).reset_index(drop=True)
    n_rows = max(len(rows), 1)

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        if rows.empty:
            _no_data(ax)
            return
        pvals = {(str(r.level), int(r.visit_day)): r.p_interaction for r in iter_rows(interaction)}
        groups = sorted(set(rows["subgroup"].astype(str)))
        ys = np.arange(len(rows))[::-1].astype(float)
        labels = []
        for y, r in zip(ys, iter_rows(rows), strict=True):
            colour = ARM_COLOURS[groups.index(str(r.subgroup)) % len(ARM_COLOURS)]
            est, lo, hi = float(r.estimate), float(r.ci_low), float(r.ci_high)
            ax.plot([lo, hi], [y, y], color=colour, lw=1.6)
            ax.plot([est], [y], marker="D", color=colour, ms=5)
            labels.append(f"{r.level} · day {int(r.visit_day)} · {r.subgroup} (n={int(r.n)})")
        ax.set_yticks(ys, labels)
        ax.axvline(0.0, color="#444444", lw=0.8)
        ax.set_xlabel(f"{difference}: change in shaft diameter, µm ({ci_percent:g} % CI)")
        ax.set_ylim(-0.7, len(rows) - 0.3)
        right = ax.secondary_yaxis("right")
        texts = []
        for r in iter_rows(rows):
            p = pvals.get((str(r.level), int(r.visit_day)))
            texts.append("" if p is None or not np.isfinite(p) else f"p_int {_p(p)}")
        right.set_yticks(ys, texts)
        right.tick_params(length=0)
        ax.grid(axis="y", visible=False)
        ax.set_title("treatment effect by baseline shaft diameter")

    height = 1.0 + 0.3 * n_rows
    longest = max(
        (
            len(f"{r.level} · day {int(r.visit_day)} · {r.subgroup} (n={int(r.n)})")
            for r in iter_rows(rows)
        ),
        default=10,
    )
    margins = {
        "left": min(0.45, 0.03 + 0.0068 * longest),
        "right": 0.88,
        "bottom": 0.55 / height,
        "top": 1 - 0.35 / height,
    }
    return _render(8.0, height, draw, margins=margins)


def waterfall_figure(
    *,
    responders: pd.DataFrame,
    threshold: float,
    difference: str,
    endpoint: str,
    unit: str,
    day: int | None,
) -> bytes:
    """Per-subject waterfall of the between-site change, responders coloured.

    Parameters
    ----------
    responders : DataFrame
        ``subject, change, responder``: `difference` in change from baseline per subject.
    threshold : float
        Responder threshold on the same scale (drawn as a dashed line); NaN for none.
    difference : str
        Label of the difference.
    endpoint : str
        Endpoint name.
    unit : str
        Unit suffix.
    day : int or None
        Visit day of the change.

    Returns
    -------
    bytes
        PNG image.
    """
    rows = responders.dropna(subset=["change"]).sort_values(
        ["change", "subject"], ascending=[False, True]
    )

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        if rows.empty:
            _no_data(ax)
            return
        x = np.arange(len(rows))
        is_responder = rows["responder"].fillna(False).to_numpy(dtype=bool)
        colours = [_RESPONDER if r else _OTHER for r in is_responder]
        ax.bar(x, rows["change"].to_numpy(dtype=float), color=colours, width=0.8)
        ax.axhline(0.0, color="#444444", lw=0.8)
        if np.isfinite(threshold):
            ax.axhline(threshold, color=_RESPONDER, lw=1.0, ls="--")
        ax.set_xticks(x, rows["subject"].astype(str).tolist(), rotation=90)
        ax.set_xlabel("subject")
        when = f" at day {day}" if day is not None else ""
        ax.set_ylabel(f"{difference}:\nΔ {endpoint}{_unit(unit)}")
        ax.set_axisbelow(True)
        ax.set_title(
            f"per-subject change{when} (responders {int(is_responder.sum())} of {len(rows)})"
        )
        ax.grid(axis="x", visible=False)
        from matplotlib.patches import Patch

        ax.legend(
            handles=[
                Patch(color=_RESPONDER, label="responder"),
                Patch(color=_OTHER, label="non-responder"),
            ],
            frameon=False,
            loc="upper right",
        )

    margins = {"left": 0.1, "bottom": 0.25, "top": 0.9}
    return _render(8.0, 3.4, draw, margins=margins)


def roc_figure(
    *,
    roc: pd.DataFrame,
    curves: Mapping[str, pd.DataFrame],
    names: Mapping[str, str] | None = None,
) -> bytes:
    """ROC curves of baseline predictors of response, with AUC (CI) and Youden cut-off.

    Parameters
    ----------
    roc : DataFrame
        ``predictor, n, auc, auc_ci_low, auc_ci_high, youden_cutoff, sensitivity,
        specificity, direction``.
    curves : mapping of str to DataFrame
        Predictor → ``fpr, tpr, threshold``.
    names : mapping of str to str, optional
        Predictor → name shown in the legend.

    Returns
    -------
    bytes
        PNG image.
    """

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=0.8, ls=":")
        drawn = 0
        for i, r in enumerate(iter_rows(roc)):
            curve = curves.get(str(r.predictor))
            if curve is None or curve.empty:
                continue
            colour = ARM_COLOURS[i] if i < len(ARM_COLOURS) else f"C{i % 10}"
            style = _LINE_STYLES[i % len(_LINE_STYLES)]  # overlapping steps stay visible
            ax.step(
                curve["fpr"].to_numpy(float),
                curve["tpr"].to_numpy(float),
                where="post",
                color=colour,
                lw=1.6,
                ls=style,
                label=f"{(names or {}).get(str(r.predictor), r.predictor)}: AUC {_num(r.auc)} "
                f"({_num(r.auc_ci_low)}–{_num(r.auc_ci_high)})",
            )
            if np.isfinite(r.sensitivity) and np.isfinite(r.specificity):
                ax.plot(
                    [1 - r.specificity],
                    [r.sensitivity],
                    marker="o",
                    ms=6,
                    mfc="white",
                    color=colour,
                )
            drawn += 1
        if not drawn:
            _no_data(ax)
            return
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("1 − specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title("baseline predictors of response (○ Youden cut-off)")
        ax.legend(loc="lower right", frameon=False, fontsize=7.5)

    return _render(
        6.4, 5.0, draw, margins={"left": 0.12, "right": 0.97, "bottom": 0.1, "top": 0.93}
    )


def _unit(unit: str) -> str:
    return f",{unit}" if unit.strip() else ""


def _num(value: Any, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.{digits}f}" if math.isfinite(v) else "–"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"
