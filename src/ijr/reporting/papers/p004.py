"""Paper 004 (Li, Wang & Li): its figures and marker tables in the report registry, drawn by
:mod:`ijr.reporting.p004`. Results go under ``<results>/<profile>/p004/``; each target writes its
figure and the phase / anomaly markers of its runs (``004-markers``)."""

from __future__ import annotations

from ijr.reporting.registry import Output, report

FIGURES = {  # name -> (experiment, title)
    "fig1": ("p004_fig1_phases", "Figure 1: the four EOS phases (sharpness, loss)"),
    "fig2": ("p004_fig2_anomalies", "Figure 2: Λ against ‖A‖², anomaly points"),
    "fig3": ("p004_fig3_gram", "Figure 3: Gram eigenvalues and the D / R decomposition"),
    "sec4": ("p004_sec4_linear", "Section 4: the linear net against Theorem 1"),
}


@report(
    "004-markers",
    "phase / anomaly markers and Gram extremes of each run (OUT.md, OUT.csv)",
    kind="table",
    aliases=("p004-markers",),
)
def _markers(runs, args) -> list:
    from ijr.reporting import p004
    from ijr.reporting.runs import check_profiles

    runs, _ = check_profiles(runs, args.profile, args.allow_mixed_profiles, what=args.report)
    return p004.write_markers(p004.markers_table(runs), args.out)


def _drawer(name: str):
    def draw(runs, _args):
        from ijr.reporting import figures, p004

        fig = getattr(p004, name)(runs)
        figures.footer(fig, runs)
        return fig

    draw.__name__ = f"_{name}"
    return draw


for _name, (_experiment, _title) in FIGURES.items():
    report(
        f"004-{_name}",
        _title,
        aliases=(f"p004-{_name}",),
        experiments=(_experiment,),
        outputs=(
            Output(f"p004/{_name}", _experiment),
            Output(f"p004/{_name}_markers", _experiment, report="004-markers"),
        ),
    )(_drawer(_name))
