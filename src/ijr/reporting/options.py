"""Parsing of ``ijr-report``'s option values shared by the reports' ``draw`` functions
(:mod:`ijr.reporting.papers`): comma lists, step windows, step lists. Bad values raise
:class:`UsageError` (one line on stderr, exit code 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


def csv_list(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None for an empty value."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def windows(text: str | None) -> list[tuple[float, float]] | None:
    """``"START:END[,START:END...]"`` -> [(start, end), ...]; None for an empty value."""
    if not text:
        return None
    out = []
    for item in text.split(","):
        lo, sep, hi = item.partition(":")
        try:
            out.append((float(lo), float(hi)))
        except ValueError:
            raise UsageError(f"--windows expects START:END[,START:END...], got '{item}'") from None
        if not sep:
            raise UsageError(f"--windows expects START:END[,START:END...], got '{item}'")
    return out


def steps(text: str | None) -> list[int] | None:
    """``"100,200"`` -> [100, 200]; None for an empty value."""
    items = csv_list(text)
    if not items:
        return None
    try:
        return [int(item) for item in items]
    except ValueError:
        raise UsageError(f"--steps expects comma-separated integers, got '{text}'") from None


__all__ = ["UsageError", "csv_list", "steps", "windows"]
