"""Paper 002 (MacDonald, Valmadre & Lucey): its figures, tables and make targets in the report
registry, drawn by :mod:`ijr.reporting.p002` (App. C.2's input scaling by paper 000's ``curves``).
Results go under ``<results>/<profile>/p002/``. The families of Figs. 2-5 and 28-29 are GPU
scale: their targets launch their experiments only in ``profile=paper``."""

from __future__ import annotations

from ijr.reporting.registry import Output, report, target

# name -> (title, experiments of every profile, experiments of profile=paper only)
FIGURES = {
    "fig1": (
        "Figure 1 / Figs. 6-11: loss - label entropy, sharpness, Jacobian norm (label smoothing x eta)",
        ("p002_fig1_label_smoothing",),
        (),
    ),
    "fig2": (
        "Figure 2: end-of-training norms against weight decay",
        (),
        ("p002_fig2_weight_decay",),
    ),
    "fig3": ("Figures 3-4: end-of-training norms against eta and B", (), ("p002_fig3_lr_batch",)),
    "fig5": (
        "Figure 5 / Figs. 20-27: label smoothing, mixup, augmentation p, SAM rho",
        (),
        ("p002_fig5_label_smoothing", "p002_fig5_mixup", "p002_fig5_augment", "p002_fig5_sam"),
    ),
    "fig28": (
        "Figures 28-29: the first epoch and 90 epochs of SGD with label smoothing",
        (),
        ("p002_fig28_first_epoch", "p002_fig29_long"),
    ),
}
C3 = ("p002_c3_gaussian", "p002_c3_relu")


def _drawer(name: str):
    def draw(runs, _args):
        from ijr.reporting import figures, p002

        fig = getattr(p002, name)(runs)
        figures.footer(fig, runs)
        return fig

    draw.__name__ = f"_{name}"
    return draw


for _name, (_title, _every, _paper_only) in FIGURES.items():
    report(
        f"002-{_name}",
        _title,
        aliases=(f"p002-{_name}",),
        experiments=_every,
        paper_experiments=_paper_only,
        outputs=(Output(f"p002/{_name}", _every[0] if len(_every) == 1 else None),),
    )(_drawer(_name))

report(
    "002-fig32",
    "Figure 32: the fits of App. C.3's 8-point regression (Gaussian and ReLU MLPs)",
    aliases=("p002-fig32",),
)(_drawer("fig32"))


@report(
    "002-tables",
    "Tables 1-2 (App. C.3): Jacobian norm, sharpness, first-layer norm (OUT.md, OUT.csv)",
    kind="table",
    aliases=("p002-tables",),
)
def _tables(runs, args) -> list:
    from ijr.reporting import p002

    return p002.write_tables(p002.tables(runs), args.out)


target(
    "002-c3",
    "App. C.3 (Tables 1-2, Fig. 32): the 8-point 2-D regression, Gaussian vs ReLU MLPs",
    [
        Output("p002/tables", None, report="002-tables"),
        Output("p002/fig32", None, report="002-fig32"),
    ],
    aliases=("p002-c3",),
    experiments=C3,
)

report(
    "002-fig30",
    "Figures 30-31 (App. C.2): sharpness and softmaxed Jacobian norm under input scaling",
    aliases=("p002-fig30",),
)(_drawer("fig30"))

target(
    "002-input-scaling",
    "paper 002 App. C.2 (Figs. 30-31): sharpness and ‖∂f/∂x‖ under input scaling",
    [Output("p002/input_scaling", "p002_input_scaling", report="002-fig30")],
    aliases=("p002-input-scaling",),
    experiments=("p002_input_scaling",),
)
