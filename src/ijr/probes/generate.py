"""Regenerate the files written from the probe registry and defaults, so nothing is copied by hand:

* ``conf/probes/none.yaml``: every key of :class:`ijr.probes.config.ProbeConfig` at its default,
  with its meaning (:func:`ijr.probes.config.defaults_yaml`);
* the ``<!-- generated:probe-metrics -->`` block of ``README.md``: the metric and file table of
  the probe groups (:func:`ijr.probes.groups.metrics_block`).

    python -m ijr.probes.generate          # rewrite both
    python -m ijr.probes.generate --check  # exit 1 (naming the stale file) if either is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ijr.probes import groups
from ijr.probes.config import YAML_FILE, defaults_yaml

README = Path(__file__).resolve().parents[3] / "README.md"


def expected(readme: Path = README) -> dict[Path, str]:
    """The generated text of each file (the README with its block rewritten)."""
    text = readme.read_text()
    if not groups.block_pattern().search(text):
        raise ValueError(f"{readme} has no <!-- generated:{groups.BLOCK} --> block")
    return {YAML_FILE: defaults_yaml(), readme: groups.render(text)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected().items() if path.read_text() != text]
    if args.check:
        if stale:
            names = ", ".join(str(p) for p in stale)
            print(f"out of date: {names} (run python -m ijr.probes.generate)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
