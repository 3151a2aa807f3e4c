"""Small inline SVG charts, drawn on the server: they need no script and no network, and
each comes with a table of the same numbers for a screen reader."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from cronwheel.ui.trends import Step

WIDTH, HEIGHT = 600, 140
COLOURS = {"success": "#2f855a", "handed_off": "#3182ce", "failure": "#c53030",
           "timeout": "#dd6b20", "error": "#805ad5"}


SLOTS = 60  # steps drawn: the newest at the right edge, empty slots on the left


def outcome_bars(steps: Sequence[Step], label: str) -> Markup:
    """Stacked bars, one per step, of attempts by outcome."""
    steps = steps[-SLOTS:]
    most = max((sum(s.outcomes.values()) for s in steps), default=0) or 1
    width = WIDTH / SLOTS
    parts: list[str] = []
    for index, step in enumerate(steps, start=SLOTS - len(steps)):
        y = float(HEIGHT)
        for outcome, colour in COLOURS.items():
            count = step.outcomes.get(outcome, 0)
            if count:
                h = HEIGHT * count / most
                y -= h
                parts.append(f'<rect x="{index * width:.1f}" y="{y:.1f}" '
                             f'width="{max(width - 1, 1):.1f}" height="{h:.1f}" '
                             f'fill="{colour}"/>')
    return _svg(parts, label, f"the tallest bar is {most} attempt{'' if most == 1 else 's'}")


def lateness_lines(steps: Sequence[Step], label: str) -> Markup:
    """p50 and p99 of fire lateness, in milliseconds, one point per step that fired."""
    steps = steps[-SLOTS:]
    values = [v for s in steps for v in (s.p50, s.p99) if v is not None]
    most = max(values, default=0.0) or 0.001
    width = WIDTH / (SLOTS - 1)
    parts: list[str] = []
    for name, colour in (("p50", "#3182ce"), ("p99", "#c53030")):
        points = [f"{i * width:.1f},{HEIGHT - 2 - (HEIGHT - 4) * value / most:.1f}"
                  for i, s in enumerate(steps, start=SLOTS - len(steps))
                  if (value := getattr(s, name)) is not None]
        if len(points) == 1:
            parts.append(f'<circle cx="{points[0].split(",")[0]}" '
                         f'cy="{points[0].split(",")[1]}" r="3" fill="{colour}"/>')
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'points="{" ".join(points)}"/>')
    return _svg(parts, label, f"the top of the scale is {most * 1000:.1f} ms")


def _svg(parts: list[str], label: str, scale: str) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<p class="scale small muted">{escape(scale[0].upper() + scale[1:])}.</p>'

        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}; {escape(scale)}">'
        f'<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="#cbd5e0"/>{body}</svg>'
    )
