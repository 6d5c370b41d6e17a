"""The report registry: every table and figure of every paper declared once, by paper.

An entry (:class:`Report`) is named ``<paper>-<report>`` (``000-fig4``, ``004-fig1``,
``002-input-scaling``): the form that works unchanged as an ``ijr-report`` argument, a make target
(``make 000-fig4``) and a file name. Paper 000's entries keep their bare historical names as
aliases (``fig4``, ``table1``, ``curves``), the companions' their ``pNNN-`` ones (``p004-fig1``).

An entry can be

* a *report* (``draw`` set): ``ijr-report NAME --runs DIR --out OUT`` calls ``draw(runs, args)``
  with the loaded runs and the parsed options (the common ones of :mod:`ijr.report` and those the
  report declares in ``options``); it returns a ``Figure`` (saved as ``OUT.png`` / ``OUT.pdf``)
  or, for tables, the paths it wrote;
* a *target* (``outputs`` set): ``make NAME`` / ``scripts/reproduce.py NAME`` launches the
  ``experiments`` (plus ``paper_experiments`` in ``profile=paper``), then writes each
  :class:`Output` under ``<results>/<profile>/``;
* or both (most figures: ``make fig4`` runs ``fig4_arp`` and then ``ijr-report fig4``).

Entries are declared in one module per paper under :mod:`ijr.reporting.papers` (``p000.py``,
``p002.py``, ``p004.py``), with the :func:`report` decorator or :func:`target`; every module of that
package is imported by :func:`entries`, so adding a paper's reports is one new module there. The
registry imports neither pandas nor matplotlib: the paper modules import their drawing code inside
``draw``, so ``make help`` and ``scripts/reproduce.py`` stay fast.

Read by ``ijr-report`` (:mod:`ijr.report`), ``scripts/reproduce.py`` (make targets), ``make claims``
(:mod:`ijr.claims.runner`), ``make help`` and the README's generated list of targets.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("figure", "table", "claims")
NAME = re.compile(r"^(\d{3})-[a-z0-9][a-z0-9_-]*$")
CROSS_PAPER = ("claims",)  # entries of no one paper: every experiment's claims
SEED0 = ("--select", "seed=0")  # the figures of one run: the first seed


@dataclass(frozen=True)
class Output:
    """One ``ijr-report`` call of a target: ``ijr-report REPORT --runs RUNS[/FOLDER] --out
    RESULTS/PROFILE/STEM --profile PROFILE ARGS``. ``report`` names another entry (default: the
    target itself); ``folder`` is the experiment whose run directories it reads (None: the runs
    root)."""

    stem: str
    folder: str | None
    args: tuple[str, ...] = ()
    report: str | None = None


@dataclass(frozen=True)
class Report:
    """One entry of the registry (see the module docstring)."""

    name: str  # <paper>-<report>, e.g. 000-fig4
    title: str  # one line: which paper figure or table, what it shows
    kind: str = "figure"  # figure | table | claims: what ijr-report hands to draw
    draw: Callable[[Any, Any], Any] | None = None  # (runs, args) -> Figure or written paths
    aliases: tuple[str, ...] = ()  # earlier names that keep working (fig4, p004-fig1)
    needs_runs: bool = True  # False: drawn from equations alone (Fig. 7)
    experiments: tuple[str, ...] = ()  # conf/experiment/ launched by the target, every profile
    paper_experiments: tuple[str, ...] = ()  # launched too in profile=paper (GPU scale)
    outputs: tuple[Output, ...] = ()  # what the target writes; empty: not a make target
    options: tuple[
        tuple[str, dict], ...
    ] = ()  # ijr-report options it reads: (flag, argparse kwargs)
    paper: str = field(init=False)

    def __post_init__(self) -> None:
        match = NAME.match(self.name)
        if match is None and self.name not in CROSS_PAPER:
            raise ValueError(f"report name '{self.name}' must be <paper>-<name>, e.g. 000-fig4")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {', '.join(KINDS)}")
        if self.draw is None and not self.outputs:
            raise ValueError(f"{self.name}: neither a report (draw) nor a target (outputs)")
        object.__setattr__(self, "paper", match.group(1) if match else "")

    @property
    def command_name(self) -> str:
        """The name written on command lines: the first alias (so that the commands printed by
        ``make`` read as before), else the name."""
        return self.aliases[0] if self.aliases else self.name

    @property
    def is_target(self) -> bool:
        return bool(self.outputs)

    def experiments_for(self, profile: str) -> list[str]:
        """The experiments ``make NAME PROFILE=profile`` launches."""
        return [*self.experiments, *(self.paper_experiments if profile == "paper" else ())]


_REGISTRY: dict[str, Report] = {}
_LOADED = False


def register(entry: Report) -> Report:
    """Add ``entry``; a second entry (or alias) with a taken name is an error."""
    taken = {n for e in _REGISTRY.values() for n in (e.name, *e.aliases)}
    clash = [n for n in (entry.name, *entry.aliases) if n in taken]
    if clash:
        raise ValueError(f"report name(s) {', '.join(clash)} registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def report(name: str, title: str, **fields) -> Callable:
    """Decorator: register the decorated ``draw(runs, args)`` as report ``name``."""

    def decorate(draw: Callable) -> Callable:
        register(Report(name, title, draw=draw, **fields))
        return draw

    return decorate


def target(name: str, title: str, outputs: Sequence[Output], **fields) -> Report:
    """Register a make target that only runs other reports (e.g. ``000-fig12``: ``curves``)."""
    return register(Report(name, title, outputs=tuple(outputs), **fields))


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from ijr.reporting import papers

    for module in pkgutil.iter_modules(papers.__path__):
        importlib.import_module(f"{papers.__name__}.{module.name}")


def entries() -> dict[str, Report]:
    """Every registered entry by name (paper modules imported on first use), in paper order."""
    _load()
    return dict(sorted(_REGISTRY.items(), key=lambda item: (item[1].paper, _natural(item[0]))))


def _natural(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def names() -> list[str]:
    """Every accepted name: the registered names and their aliases."""
    return [n for e in entries().values() for n in (e.name, *e.aliases)]


def get(name: str) -> Report:
    """The entry called ``name`` (or with that alias); KeyError naming the choices otherwise."""
    for entry in entries().values():
        if name == entry.name or name in entry.aliases:
            return entry
    raise KeyError(f"unknown report '{name}'; choose from: {', '.join(names())}")


def reports() -> dict[str, Report]:
    """The entries ``ijr-report`` can draw."""
    return {n: e for n, e in entries().items() if e.draw is not None}


def targets() -> dict[str, Report]:
    """The entries ``make`` / ``scripts/reproduce.py`` can run."""
    return {n: e for n, e in entries().items() if e.is_target}


def figure_targets(paper: str, profile: str) -> list[Report]:
    """``make figures``: the figure targets of ``paper`` that fit ``profile`` (those with only
    paper-profile experiments need ``profile=paper`` and come last)."""
    chosen = [
        e
        for e in targets().values()
        if e.paper == paper
        and e.kind == "figure"
        and (profile == "paper" or e.experiments or not e.paper_experiments)
    ]
    return sorted(chosen, key=lambda e: not e.experiments and bool(e.paper_experiments))


def output_report(entry: Report, output: Output) -> Report:
    """The report an output of ``entry`` draws."""
    return get(output.report) if output.report else entry


def help_lines() -> list[str]:
    """``make help``: one line per target (name, earlier name, title)."""
    lines = []
    for entry in targets().values():
        alias = f" ({', '.join(entry.aliases)})" if entry.aliases else ""
        lines.append(f"  {entry.name + alias:<40} {entry.title}")
    return lines


def markdown_table() -> str:
    """The README's generated list of make targets: name, aliases, title, experiments, outputs."""
    rows = []
    for entry in targets().values():
        exps = [f"`{e}`" for e in entry.experiments]
        exps += [f"`{e}` (paper)" for e in entry.paper_experiments]
        outs = [f"`{o.stem}`" for o in entry.outputs]
        rows.append(
            [
                f"`{entry.name}`",
                ", ".join(f"`{a}`" for a in entry.aliases),
                entry.title,
                ", ".join(exps) or "— (no runs)",
                ", ".join(outs),
            ]
        )
    from ijr.reporting.render import markdown_lines

    header = ["make target", "also", "what", "experiments (conf/experiment/)", "outputs"]
    return "\n".join(markdown_lines(header, rows))


__all__ = [
    "Output",
    "Report",
    "SEED0",
    "entries",
    "figure_targets",
    "get",
    "help_lines",
    "markdown_table",
    "names",
    "output_report",
    "register",
    "report",
    "reports",
    "target",
    "targets",
]
