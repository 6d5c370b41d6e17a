"""Paper 000 (Lee, Park & Lee, ICML 2023): its tables and figures in the report registry.

Each entry names the experiments its make target launches (conf/experiment/), what it writes
under ``<results>/<profile>/`` and how ``ijr-report`` draws it from the parsed options; the
drawing code is :mod:`ijr.reporting.figures` and :mod:`ijr.reporting.tables` (imported inside
``draw`` so that the registry stays light). Every entry keeps its bare name (``fig4``, ``table1``)
as an alias of ``000-fig4``, ``000-table1``.
"""

from __future__ import annotations

from ijr.reporting.options import UsageError, csv_list, steps, windows
from ijr.reporting.registry import SEED0, Output, report, target

NORMS = "probe/logit_norm,probe/logit_sum_abs,probe/weight_norm,probe/dist_from_init"
RELATION = "probe/sharpness,probe/impurity_mean*probe/jacobian_ones_sq"
FIG30_STEPS = "100,500,1000,2000,4000,6000"
SHARPNESS, JACOBIAN = "probe/sharpness", "probe/jacobian_norm_sq"  # figures.SHARPNESS, .JACOBIAN

# ijr-report options of paper 000's figures: (flag, argparse keyword arguments), one definition
# each, shared by the reports that read them.
STYLE_BY = (
    "--style-by",
    {"help": "curves/fig5/fig6: comma-separated config keys that tell settings apart"},
)
SMOOTH = ("--smooth", {"type": int, "help": "curves/fig5: moving-average window (logged points)"})
WINDOWS = (
    "--windows",
    {"help": "fig2: step windows; fig3: zoom windows after the whole run (START:END[,...])"},
)
STEPS = (
    "--steps",
    {"help": "fig8/fig9/fig11: probe steps to draw, comma-separated (default: last)"},
)


# ----------------------------------------------------------------------------- tables
def _table(name: str):
    """Table ``name`` (1, 5 or 6; :func:`ijr.reporting.tables.build_table`) as OUT.{md,csv,tex}."""

    def draw(runs, args) -> list:
        from ijr.reporting import tables

        frame = tables.build_table(
            name,
            runs,
            profile=args.profile,
            allow_mixed_profiles=args.allow_mixed_profiles,
            expected_seeds=args.expected_seeds,
            experiment=args.experiment,
            paper=not args.no_paper,
        )
        return tables.write_table(frame, args.out)

    return draw


for _n, _title, _always, _paper in (
    ("table1", "Table 1: SGD / SAM / ASAM / EJR test accuracy (+ WRN rows in paper)",
     ("table1_simplecnn", "table1_simplecnn_full"), ("table1_wrn", "table1_wrn_sgd")),
    ("table5", "Table 5: EJR parameter sweeps", ("table5_simplecnn",), ("table5_wrn",)),
    ("table6", "Table 6: EJR.v2 sweep (GPU scale: PROFILE=paper)", (), ("table6_wrn",)),
):  # fmt: skip
    report(
        f"000-{_n}",
        _title,
        kind="table",
        aliases=(_n,),
        experiments=_always,
        paper_experiments=_paper,
        outputs=(Output(_n, None),),
    )(_table(_n))


@report(
    "000-table2",
    "Tables 2, 7: AT / TRADES with and without efficient EJR (GPU scale: PROFILE=paper)",
    kind="table",
    aliases=("table2",),
    paper_experiments=("table2_adversarial",),
    outputs=(Output("table2", None),),
)
def _table2(runs, args) -> list:
    from ijr.reporting import table2

    frame = table2.table2(
        runs,
        profile=args.profile,
        allow_mixed_profiles=args.allow_mixed_profiles,
        experiment=args.experiment or "table2*",
        paper=not args.no_paper,
    )
    return table2.write_table2(frame, args.out)


# ----------------------------------------------------------------------------- figures
def _seed0(stem: str, folder: str, *args: str, report: str | None = None) -> Output:
    return Output(stem, folder, (*SEED0, *args), report)


@report(
    "000-fig1",
    "Figure 1: impurity of tracked examples within Theorem 4.1's bounds; mean impurity",
    aliases=("fig1",),
    experiments=("fig1_impurity",),
    outputs=(_seed0("fig1", "fig1_impurity"),),
    options=(
        ("--example", {"type": int, "help": "fig1: which tracked example (default: the first)"}),
    ),
)
def _fig1(runs, args):
    from ijr.reporting import figures

    return figures.fig1(runs, example=args.example)


@report(
    "000-fig2",
    "Figures 2, 26: sharpness and ‖⟨J⟩‖² per step window, 2/η dashed",
    aliases=("fig2",),
    experiments=("fig2_sharpness_jacobian",),
    outputs=(_seed0("fig2", "fig2_sharpness_jacobian"),),
    options=(
        WINDOWS,
        ("--left", {"default": SHARPNESS, "help": "fig2: metric on the left axis"}),
        ("--right", {"default": JACOBIAN, "help": "fig2: metric on the right axis"}),
    ),
)
def _fig2(runs, args):
    from ijr.reporting import figures

    return figures.fig2(runs, windows=windows(args.windows), left=args.left, right=args.right)


@report(
    "000-fig3",
    "Figures 3, 27: UMAP of the parameter trajectory (whole run and a zoom)",
    aliases=("fig3",),
    experiments=("fig3_trajectory",),
    outputs=(_seed0("fig3", "fig3_trajectory"),),
    options=(WINDOWS,),
)
def _fig3(runs, args):
    from ijr.reporting import figures

    zoom = windows(args.windows)
    return figures.fig3(runs, windows=[None, *zoom] if zoom else (None, (100, 300)))


@report(
    "000-fig4",
    "Figures 4, 28: the three IJR phases of one run",
    aliases=("fig4",),
    experiments=("fig4_arp",),
    outputs=(_seed0("fig4", "fig4_arp"),),
)
def _fig4(runs, args):
    from ijr.reporting import figures

    return figures.fig4(runs)


@report(
    "000-fig5",
    "Figure 5: learning rates (top) and batch sizes (bottom), ARP end marked",
    aliases=("fig5",),
    experiments=("fig5_lr", "fig5_batch"),
    outputs=(
        _seed0("fig5_lr", "fig5_lr", "--style-by", "optim.lr"),
        _seed0("fig5_batch", "fig5_batch", "--style-by", "data.batch_size"),
    ),
    options=(
        STYLE_BY,
        SMOOTH,
        (
            "--row",
            {
                "action": "append",
                "default": [],
                "metavar": "K=V;K=V",
                "help": "fig5: one panel row per filter (repeatable)",
            },
        ),
    ),
)
def _fig5(runs, args):
    from ijr.reporting import figures
    from ijr.reporting.runs import parse_assignments

    rows = [parse_assignments(r.split(";")) for r in args.row] or None
    style_by = csv_list(args.style_by)
    return figures.fig5(runs, rows=rows, style_by=style_by, smoothing=args.smooth)


@report(
    "000-fig6",
    "Figures 6, 29: test accuracy and loss per epoch, WRN (GPU scale: PROFILE=paper)",
    aliases=("fig6",),
    paper_experiments=("fig6_ejr_wrn",),
    outputs=(Output("fig6", "fig6_ejr_wrn"),),
    options=(STYLE_BY,),
)
def _fig6(runs, args):
    from ijr.reporting import figures

    style_by = csv_list(args.style_by)
    return figures.fig6(runs, style_by=style_by[0] if style_by else "method.name")


@report(
    "000-fig7",
    "Figure 7: the secular function v(λ) of eq. (10) (no runs)",
    aliases=("fig7",),
    needs_runs=False,
    outputs=(Output("fig7", None),),
    options=(("--p", {"help": "fig7: the probability vector, comma-separated"}),),
)
def _fig7(_runs, args):
    from ijr.reporting import figures

    try:
        p = [float(v) for v in csv_list(args.p)] if args.p else figures.FIG7_P
    except ValueError:
        raise UsageError(f"--p expects comma-separated probabilities, got '{args.p}'") from None
    return figures.fig7(p)


@report(
    "000-fig8",
    "Figures 8, 30: rank-ordered ⟨QΛ^½⟩ heatmaps (fig30: at several steps)",
    aliases=("fig8",),
    experiments=("fig10_subspace",),
    outputs=(
        _seed0("fig8", "fig10_subspace"),
        _seed0("fig30", "fig10_subspace", "--steps", FIG30_STEPS),
    ),
    options=(STEPS,),
)
def _fig8(runs, args):
    from ijr.reporting import figures

    return figures.fig8(runs, steps=steps(args.steps))


def _step(args) -> int | None:
    chosen = steps(args.steps)
    return chosen[0] if chosen else None


@report(
    "000-fig9",
    "Figures 9, 11, 31-33: directional data of m = √λ⁽¹⁾Jq⁽¹⁾ (also writes fig11, fig33)",
    aliases=("fig9",),
    experiments=("fig10_subspace",),
    outputs=(
        _seed0("fig9", "fig10_subspace"),
        _seed0("fig11", "fig10_subspace", report="000-fig11"),
        _seed0("fig33", "fig10_subspace", report="000-fig33"),
    ),
    options=(
        STEPS,
        ("--pair", {"help": "fig9: the two classes I,J (default: most opposed means)"}),
    ),
)
def _fig9(runs, args):
    from ijr.reporting import figures

    pair = steps(args.pair)
    if pair is not None and len(pair) != 2:
        raise UsageError(f"--pair expects two classes I,J, got '{args.pair}'")
    return figures.fig9(runs, step=_step(args), pair=tuple(pair) if pair else None)


@report(
    "000-fig10",
    "Figures 10, 34: gradient alignment with the top Hessian subspace (eq. 48)",
    aliases=("fig10",),
    experiments=("fig10_subspace",),
    outputs=(_seed0("fig10", "fig10_subspace"),),
)
def _fig10(runs, args):
    from ijr.reporting import figures

    return figures.fig10(runs)


@report(
    "000-fig11",
    "Figure 11: ‖Jq⁽ⁱ⁾‖ / mean and cos²(Jq⁽ⁱ⁾, Jq⁽ʲ⁾)",
    aliases=("fig11",),
    options=(STEPS,),
)
def _fig11(runs, args):
    from ijr.reporting import figures

    return figures.fig11(runs, step=_step(args))


@report("000-fig33", "Figure 33: mean resultant length of m / ‖m‖ per class", aliases=("fig33",))
def _fig33(runs, args):
    from ijr.reporting import figures

    return figures.fig33(runs)


@report(
    "000-fig36",
    "Figure 36: final test accuracy over η × λ_reg",
    aliases=("fig36",),
    experiments=("fig36_ejr_grid",),
    outputs=(Output("fig36", "fig36_ejr_grid"),),
    options=(
        (
            "--kind",
            {
                "default": "lines",
                "choices": ("lines", "heatmap"),
                "help": "fig36: lines or heatmap",
            },
        ),
    ),
)
def _fig36(runs, args):
    from ijr.reporting import figures

    return figures.fig36(runs, kind=args.kind)


@report(
    "000-curves",
    "any metrics against step or epoch (--metrics)",
    aliases=("curves",),
    options=(
        ("--metrics", {"help": "curves: comma-separated metric names, products a*b or globs"}),
        STYLE_BY,
        ("--x", {"default": "step", "choices": ("step", "epoch"), "help": "curves: x axis"}),
        SMOOTH,
    ),
)
def _curves(runs, args):
    from ijr.reporting import figures

    metrics = csv_list(args.metrics)
    if not metrics:
        raise UsageError("curves needs --metrics NAME[,NAME...]")
    style_by = csv_list(args.style_by)
    return figures.curves(runs, metrics, style_by=style_by, x=args.x, smoothing=args.smooth)


target(
    "000-fig12",
    "Figures 12-14: logit, weight norms and distance from init",
    [Output("fig12", "fig12_norms", ("--metrics", NORMS), report="000-curves")],
    aliases=("fig12",),
    experiments=("fig12_norms",),
)
target(
    "000-fig15",
    "Figures 15-25: sharpness against ⟨λ⁽¹⁾⟩ × ‖J1‖² per η",
    [
        Output(
            "fig15",
            "fig15_relation",
            ("--metrics", RELATION, "--style-by", "optim.lr"),
            report="000-curves",
        )
    ],
    aliases=("fig15",),
    experiments=("fig15_relation",),
)
target(
    "000-fig35",
    "Figure 35: Figure 2 with the MSE loss",
    [_seed0("fig35", "fig35_mse", report="000-fig2")],
    aliases=("fig35",),
    experiments=("fig35_mse",),
)
