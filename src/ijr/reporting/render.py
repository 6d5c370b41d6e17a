"""The one Markdown / LaTeX table renderer of the reports (tables 1, 2, 5, 6, paper 004's markers,
the claims and the READMEs' generated blocks), and the writer of a table's ``OUT.<suffix>`` files.

Written here rather than with ``DataFrame.to_markdown`` / ``to_latex``: the first needs
``tabulate`` (not a dependency) and pads cells, the second needs jinja2 and writes its own
preamble; the committed ``results/`` files and the tests pin this plainer format:

    | a | b |          % comment
    |---|---|          \\begin{table}[t] \\centering \\scriptsize \\caption{...}
    | 1 | 2 |          \\begin{tabular}{ll} \\toprule a & b \\\\ \\midrule 1 & 2 \\\\ \\bottomrule ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TABLE_SUFFIXES = (".md", ".csv", ".tex")


def md_cell(text: object) -> str:
    """A Markdown table cell: ``|`` escaped, newlines as spaces."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_lines(header: Sequence[object], rows: Sequence[Sequence[object]]) -> list[str]:
    """A GitHub Markdown table: the header row, ``|---|...|`` and one line per row."""
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return lines


def latex_lines(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    comment: str,
    caption: str,
    escape: Callable[[str], str] | None = None,
) -> list[str]:
    """A LaTeX ``table`` (booktabs, left-aligned columns, ``\\scriptsize``) headed by the comment
    line ``% comment``; ``escape`` (if given) is applied to every header and body cell."""
    esc = escape or (lambda text: text)
    lines = [f"% {comment}", r"\begin{table}[t]", r"\centering", r"\scriptsize"]
    lines += [r"\caption{" + caption + "}", r"\begin{tabular}{" + "l" * len(header) + "}"]
    lines += [r"\toprule", " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(c) for c in row) + r" \\" for row in rows]
    return lines + [r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def write_texts(out: str | os.PathLike, texts: Mapping[str, str]) -> list[Path]:
    """Write ``OUT.<suffix>`` for every ``suffix -> text`` (in that order; a table suffix on
    ``out`` is dropped, its folder created); returns the paths."""
    stem = Path(out)
    if stem.suffix in TABLE_SUFFIXES:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in texts.items():
        path = stem.parent / f"{stem.name}.{suffix}"
        path.write_text(text)
        written.append(path)
    return written


__all__ = ["latex_lines", "markdown_lines", "md_cell", "write_texts"]
