"""The report's "Selective answering" section: the risk-coverage curve and the utility by threshold, as a table and
two small inline SVG charts (no scripts, no external URLs, no plotting library needed)."""

from __future__ import annotations

import html

from ._selective import Outcome, Selective

_W, _H, _PAD = 360, 200, 36


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _threshold(o: Outcome) -> str:
    return "above all (abstain)" if o.threshold is None else f"≥ {o.threshold:.3f}"


def svg_chart(points: list[tuple[float, float]], *, x_label: str, y_label: str, y_range: tuple[float, float],
              marks: list[tuple[float, float, str]] = (), color: str = "#2f81f7") -> str:
    """A line chart of `points` (x in [0, 1]) with labelled axes and `marks` (x, y, label) drawn as dots."""
    lo, hi = y_range
    span = (hi - lo) or 1.0

    def xy(x: float, y: float) -> str:
        return f"{_PAD + x * (_W - 2 * _PAD):.1f},{_H - _PAD - (y - lo) / span * (_H - 2 * _PAD):.1f}"

    e = html.escape
    axes = (f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#8b949e'/>"
            f"<line x1='{_PAD}' y1='{_PAD}' x2='{_PAD}' y2='{_H - _PAD}' stroke='#8b949e'/>")
    zero = (f"<line x1='{_PAD}' x2='{_W - _PAD}' y1='{xy(0, 0).split(',')[1]}' y2='{xy(0, 0).split(',')[1]}' "
            f"stroke='#d0d7de' stroke-dasharray='3 3'/>") if lo < 0 < hi else ""
    ticks = "".join(
        f"<text x='{_PAD - 4}' y='{float(xy(0, v).split(',')[1]) + 4:.1f}' font-size='10' text-anchor='end'>"
        f"{v:g}</text>" for v in (lo, hi)) + "".join(
        f"<text x='{xy(v, lo).split(',')[0]}' y='{_H - _PAD + 13}' font-size='10' text-anchor='middle'>{v:g}</text>"
        for v in (0, 0.5, 1))
    labels = (f"<text x='{_W / 2}' y='{_H - 6}' font-size='11' text-anchor='middle'>{e(x_label)}</text>"
              f"<text x='12' y='{_H / 2}' font-size='11' text-anchor='middle' "
              f"transform='rotate(-90 12 {_H / 2})'>{e(y_label)}</text>")
    line = (f"<polyline fill='none' stroke='{color}' stroke-width='2' points='"
            + " ".join(xy(x, y) for x, y in points) + "'/>") if len(points) > 1 else ""
    dots = "".join(f"<circle cx='{xy(x, y).split(',')[0]}' cy='{xy(x, y).split(',')[1]}' r='2.5' fill='{color}'/>"
                   for x, y in points)
    marked = "".join(
        f"<circle cx='{xy(x, y).split(',')[0]}' cy='{xy(x, y).split(',')[1]}' r='5' fill='none' stroke='#cf222e' "
        f"stroke-width='2'><title>{e(label)}</title></circle>" for x, y, label in marks)
    return (f"<svg width='{_W}' height='{_H}' viewBox='0 0 {_W} {_H}' "
            f"role='img' aria-label='{e(y_label)} against {e(x_label)}'>{axes}{zero}{ticks}{labels}{line}{dots}"
            f"{marked}</svg>")


def selective_html(sel: Selective | None) -> list[str]:
    """The section, or nothing when no task was scored or no solver gave a confidence."""
    if sel is None or sel.unknown == sel.scored:
        return []
    e = html.escape
    curve = sel.curve
    risk_pts = [(o.coverage, o.risk) for o in curve if o.risk is not None]
    util_pts = [(o.coverage, o.utility_per_task) for o in curve]
    best = sel.best
    marks_risk = [(best.coverage, best.risk, "best threshold")] if best.risk is not None else []
    low = min(-sel.penalty, min(y for _, y in util_pts))
    charts = (
        "<div class='plots'><figure>"
        + svg_chart(sorted(risk_pts), x_label="coverage (share of tasks answered)", y_label="risk (wrong / answered)",
                    y_range=(0.0, 1.0), marks=marks_risk, color="#cf222e")
        + "<figcaption><b>risk-coverage</b>: answering only above a confidence threshold; the circle is the best "
          "threshold</figcaption></figure><figure>"
        + svg_chart(sorted(util_pts), x_label="coverage (share of tasks answered)", y_label="utility per task",
                    y_range=(low, 1.0), marks=[(best.coverage, best.utility_per_task, "best threshold")],
                    color="#1a7f37")
        + f"<figcaption><b>utility</b>: +1 right, -{sel.penalty:g} wrong, 0 abstained, per scored task"
          "</figcaption></figure></div>")
    ran = sel.as_run
    summary = (f"<p class='sub'>{sel.scored} scored task(s), {sel.unknown} with no confidence "
               f"({'abstained' if sel.abstain_unknown else 'answered'} at every threshold). Always answering: "
               f"utility {sel.always.utility:+.2f} ({sel.always.correct} right, {sel.always.wrong} wrong). Best "
               f"threshold {e(_threshold(best))}: utility {best.utility:+.2f}, coverage {_fmt(best.coverage)}, "
               f"risk {_fmt(best.risk)}."
               + (f" This run (--abstain-below {sel.run_threshold:g}): answered {ran.answered}, abstained "
                  f"{ran.abstained}, utility {ran.utility:+.2f}." if ran is not None and sel.run_threshold is not None
                  else "") + "</p>")
    bold = " style='font-weight:600'"
    rows = "".join(
        f"<tr{bold if o == best else ''}><td>{e(_threshold(o))}</td>"
        f"<td class='num'>{o.answered}</td><td class='num'>{o.abstained}</td><td class='num'>{_fmt(o.coverage)}</td>"
        f"<td class='num'>{_fmt(o.risk)}</td><td class='num'>{_fmt(o.accuracy)}</td>"
        f"<td class='num'>{o.utility:+.2f}</td></tr>" for o in curve)
    table = ("<table><tr><th>answer when confidence</th><th>answered</th><th>abstained</th><th>coverage</th>"
             "<th>risk</th><th>selective accuracy</th><th>utility</th></tr>" + rows + "</table>")
    return ["<h2>Selective answering</h2>", summary, charts, table]


__all__ = ["selective_html", "svg_chart"]
