"""Which code made a run: the git commit of the ijr tree, recorded in each run's summary.json
(``code``), so that the records behind a committed result name the commits that made them.

A tree exported with ``git archive`` (a frozen copy, as the cpu reproductions run from) has no
``.git``: ``.gitattributes`` marks this file ``export-subst``, so the archive carries its commit
in :data:`ARCHIVED_COMMIT`. A git checkout is asked with ``git rev-parse``; uncommitted changes
under ``src/`` or ``conf/`` add ``+dirty`` (the commit alone would not say what ran).
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

#: Filled in by ``git archive`` (export-subst); left as is in a checkout.
ARCHIVED_COMMIT = "$Format:%H$"
#: The tree above ``src/ijr``.
TREE = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(TREE), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.strip()


@lru_cache(maxsize=1)
def code_version() -> str:
    """The commit of the code this process runs (``<sha>``, ``<sha>+dirty``), or ``unknown``
    (neither an archive nor a git checkout, e.g. an installed wheel)."""
    if not ARCHIVED_COMMIT.startswith("$"):
        return ARCHIVED_COMMIT
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "src", "conf")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def attempts_code(previous: list[str] | None) -> list[str]:
    """The ``code`` list of a run attempt: the commits of the earlier attempts it resumes
    (``previous``; None for a fresh start), then this one's, unless it is the same."""
    codes = list(previous or [])
    if not codes or codes[-1] != code_version():
        codes.append(code_version())
    return codes
