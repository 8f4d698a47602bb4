"""PNG plots of growth curves (matplotlib, when installed): written next to the page, in its ``images/`` folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

_state: dict[str, Path] = {}


def configure(page: Path) -> None:
    """Plots go to ``<page's folder>/images/``; the page links them relatively."""
    _state["dir"] = page.parent / "images"


def line(filename: str, title: str, xlabel: str, ylabel: str, series: dict[str, Sequence[tuple[float, float]]]) -> str:
    """Draw one line per series; returns the path relative to the page, or "" when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    folder = _state.get("dir")
    if folder is None:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    for label, points in series.items():
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, marker="o" if len(points) < 30 else "", label=label)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / filename)
    plt.close(fig)
    return f"images/{filename}"
