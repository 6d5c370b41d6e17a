"""Paper 000's figures from run directories (matplotlib; PNG + PDF), one module per figure
family: :mod:`.impurity` (Fig. 1), :mod:`.sharpness` (Fig. 2), :mod:`.trajectory` (Fig. 3),
:mod:`.arp` (Figs. 4, 5), :mod:`.accuracy` (Figs. 6, 36), :mod:`.secular` (Fig. 7),
:mod:`.subspace` (Figs. 8, 10), :mod:`.margins` (Figs. 9, 11, 33), :mod:`.curves` (any metrics:
Figs. 12-15, 22-25), over the shared helpers of :mod:`._plot`. Which command line draws which
figure is :mod:`ijr.reporting.papers.p000` (the report registry).

Every function takes ``runs`` — :func:`ijr.reporting.load_runs`'s frame (or rows of it), a run
directory, a runs root, or a list of run directories — and returns the ``matplotlib.figure.Figure``
(built without pyplot, so no global state and no display needed); with ``out=PATH`` it also
writes ``PATH.png`` and ``PATH.pdf``. Every figure carries a footer naming the profile(s) of its
runs.

==========  ===========================================================================
function    paper figure
==========  ===========================================================================
fig1        Fig. 1: λ⁽¹⁾ against p₍₁₎ for one example (bounds from Theorem 4.1 (c),(d));
            ⟨λ⁽¹⁾⟩ against step with the 25–75 % quantile band
fig2        Fig. 2 (and 15–21, 35 with other ``left``/``right``): two metrics on twin axes
            per step window, 2/η dashed
fig4        Fig. 4: the three IJR phases (‖⟨J⟩‖² red, sharpness purple, ⟨λ⁽¹⁾⟩ orange)
fig5        Fig. 5 (and 22–25): settings as solid/dashed/dotted lines, ARP end as "x"
curves      Figs. 12–14, 22–25, 35: any metrics, one panel each, one line style per setting
fig6        Fig. 6 / 29: test accuracy and loss per epoch, SGD solid, EJR dashed
fig36       Fig. 36: final test accuracy over η × λ_reg (lines or heatmap)
fig3        Figs. 3 / 27: UMAP of the parameter trajectory (count sketches), blue → red by step
fig7        Fig. 7: the secular function v(λ) of eq. (10) for one p (no runs needed)
fig8        Figs. 8 / 30: heatmaps of the rank-ordered ⟨QΛ^{1/2}⟩ at chosen probe steps
fig9        Figs. 9 / 31 / 32: directional data of m = √λ⁽¹⁾Jq⁽¹⁾ for two classes; cos(m̄ⁱ, m̄ʲ)
fig11       Fig. 11: histograms of ‖Jq⁽ⁱ⁾‖ / mean and cos²(Jq⁽ⁱ⁾, Jq⁽ʲ⁾)
fig33       Fig. 33: the mean resultant length ρ of m / ‖m‖ in each D_i against step
fig10       Figs. 10 / 34: cos(g^D, r); cos(−g, Jq⁽¹⁾); A_S(g^D) and A_S(r) (eq. 48)
==========  ===========================================================================

Per-run inputs besides ``metrics.csv`` (``probe_examples.csv``, ``logit_eigvecs.csv``,
``margins/``, ``trajectory.bin``) are described in :mod:`ijr.run_artifacts`.
"""

from __future__ import annotations

from ijr.reporting.figures._plot import (
    ARP_END_IMPURITY,
    IMPURITY,
    JACOBIAN,
    LINESTYLES,
    METHOD_STYLES,
    SGD_THRESHOLD,
    SHARPNESS,
    arp_steps,
    as_runs,
    expand_metrics,
    footer,
    mean_curve,
    new_figure,
    one_run,
    quantile_band,
    save_figure,
    series,
    setting_groups,
    smooth,
    threshold_line,
)
from ijr.reporting.figures.accuracy import (
    fig6,
    fig36,
    fig36_grid,
)
from ijr.reporting.figures.arp import (
    fig4,
    fig5,
)
from ijr.reporting.figures.curves import (
    curves,
)
from ijr.reporting.figures.impurity import (
    EXAMPLES_COLUMNS,
    EXAMPLES_FILE,
    fig1,
    impurity_bounds,
    load_examples,
)
from ijr.reporting.figures.margins import (
    default_pair,
    fig9,
    fig11,
    fig33,
    load_margins,
)
from ijr.reporting.figures.secular import (
    FIG7_P,
    fig7,
)
from ijr.reporting.figures.sharpness import (
    fig2,
)
from ijr.reporting.figures.subspace import (
    EIGVECS_COLUMNS,
    EIGVECS_FILE,
    GRAD_ALIGNMENT,
    GRAD_HESSIAN_COS,
    GRAD_MARGIN_COS,
    HESSIAN_ALIGNMENT,
    RANDOM_COS,
    fig8,
    fig10,
    load_eigvecs,
)
from ijr.reporting.figures.trajectory import (
    fig3,
)

__all__ = [
    "ARP_END_IMPURITY",
    "arp_steps",
    "as_runs",
    "curves",
    "default_pair",
    "EIGVECS_COLUMNS",
    "EIGVECS_FILE",
    "EXAMPLES_COLUMNS",
    "EXAMPLES_FILE",
    "expand_metrics",
    "fig1",
    "fig10",
    "fig11",
    "fig2",
    "fig3",
    "fig33",
    "fig36",
    "fig36_grid",
    "fig4",
    "fig5",
    "fig6",
    "fig7",
    "FIG7_P",
    "fig8",
    "fig9",
    "footer",
    "GRAD_ALIGNMENT",
    "GRAD_HESSIAN_COS",
    "GRAD_MARGIN_COS",
    "HESSIAN_ALIGNMENT",
    "IMPURITY",
    "impurity_bounds",
    "JACOBIAN",
    "LINESTYLES",
    "load_eigvecs",
    "load_examples",
    "load_margins",
    "mean_curve",
    "METHOD_STYLES",
    "new_figure",
    "one_run",
    "quantile_band",
    "RANDOM_COS",
    "save_figure",
    "series",
    "setting_groups",
    "SGD_THRESHOLD",
    "SHARPNESS",
    "smooth",
    "threshold_line",
]
