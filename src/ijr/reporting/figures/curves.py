"""Generic metric curves (paper 000 Figs. 12-14, 15, 22-25; paper 002 App. C.2): any metrics, one
panel each, one line style per setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.figure import Figure

from ijr.reporting.figures._plot import (
    MetricsCache,
    as_runs,
    draw_panels,
    expand_metrics,
    finish,
    legend,
    new_figure,
    setting_groups,
)


def curves(
    runs,
    metrics: Sequence[str],
    style_by: str | Sequence[str] | None = None,
    x: str = "step",
    smoothing: int | None = None,
    steps: tuple[float, float] | None = None,
    mark_arp_end: bool = False,
    logy: bool = False,
    ncols: int | None = None,
    out=None,
) -> Figure:
    """One panel per metric (names, ``a*b`` products or globs such as ``probe/layer_norm/*``);
    one line per setting (seeds averaged; settings split by ``style_by`` or by every varying config
    key), solid/dashed/dotted/... per setting, colour per metric as in the paper (red ‖⟨J⟩‖²,
    purple sharpness, orange ⟨λ⁽¹⁾⟩). Figs. 12–14 (one run), 22–25 (several), 35."""
    frame = as_runs(runs)
    cache = MetricsCache()
    names = expand_metrics(frame, metrics, cache)
    if not names:
        raise ValueError("curves needs at least one metric")
    groups = setting_groups(frame, style_by)
    ncols = ncols or min(len(names), 4)
    nrows = math.ceil(len(names) / ncols)
    fig, axes = new_figure(nrows, ncols)
    flat = list(axes.flat)
    draw_panels(
        flat[: len(names)], names, groups, cache, x, smoothing, steps, mark_arp_end, False, logy
    )
    for ax in flat[len(names) :]:
        ax.set_visible(False)
    legend(flat[0])
    return finish(fig, frame, out)
