"""Paper 002 (MacDonald et al.): its make targets in the report registry. Results go under
``<results>/<profile>/p002/``. Its figures are drawn with paper 000's ``curves`` for now; a
paper-002 figure is registered here with ``@report("002-figN", ...)`` (see
:mod:`ijr.reporting.papers.p004` for figures drawn by a paper's own module)."""

from __future__ import annotations

from ijr.reporting.registry import Output, target

target(
    "002-input-scaling",
    "paper 002 App. C.2 (Figs. 30-31): sharpness and ‖∂f/∂x‖ under input scaling",
    [
        Output(
            "p002/input_scaling",
            "p002_input_scaling",
            (
                "--metrics",
                "probe/sharpness,probe/io_jacobian_max",
                "--style-by",
                "data.input_scale,model.kwargs.activation,loss.label_smoothing",
            ),
            report="000-curves",
        )
    ],
    aliases=("p002-input-scaling",),
    experiments=("p002_input_scaling",),
)
