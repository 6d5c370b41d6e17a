"""Compare the run records of one experiment with their versions at an earlier git revision: the
same run key (config and data) measured twice, e.g. re-trained on another machine. One row per
key recorded in both, with the sweep values, each version's final metric and code, and the
difference; written as CSV and markdown.

    python scripts/compare_records.py --rev 1b2af70 --experiment table1_simplecnn \\
        --metric test/acc --keys method.name,optim.lr,seed --out results/cpu/claims/table1_rerun
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ijr.reporting.render import markdown_lines  # noqa: E402


def _at(rev: str, path: Path) -> str | None:
    """The text of ``path`` (relative to the repository) at ``rev``, or None if absent there."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True
    )
    return out.stdout if out.returncode == 0 else None


def _value(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def _code(summary: dict) -> str:
    return " then ".join(c[:12] for c in summary.get("code") or []) or "not recorded"


def compare(records: Path, rev: str, metric: str, keys: list[str]) -> pd.DataFrame:
    rows = []
    for summary_path in sorted(records.glob("*/summary.json")):
        relative = summary_path.relative_to(REPO)
        old_text = _at(rev, relative)
        if old_text is None:
            continue
        new, old = json.loads(summary_path.read_text()), json.loads(old_text)
        if new == old:
            continue  # the same record: nothing re-measured
        config = yaml.safe_load((summary_path.parent / ".hydra" / "config.yaml").read_text())
        row = {k: _value(config, k) for k in keys} | {"run_key": summary_path.parent.name}
        row |= {
            f"{metric} ({rev[:7]})": old["final"][metric],
            f"{metric} (now)": new["final"][metric],
            "difference": new["final"][metric] - old["final"][metric],
            f"code ({rev[:7]})": _code(old),
            "code (now)": _code(new),
        }
        rows.append(row)
    return pd.DataFrame(rows).sort_values(keys) if rows else pd.DataFrame()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the git revision of the earlier records")
    parser.add_argument("--experiment", required=True, help="folder under --records")
    parser.add_argument("--records", default="results/cpu/runs", help="records folder")
    parser.add_argument("--metric", default="test/acc", help="final metric to compare")
    parser.add_argument("--keys", default="seed", help="config keys naming a run, comma-separated")
    parser.add_argument("--out", required=True, help="writes OUT.csv and OUT.md")
    args = parser.parse_args(argv)
    keys = args.keys.split(",")
    frame = compare(REPO / args.records / args.experiment, args.rev, args.metric, keys)
    if frame.empty:
        print(f"compare_records: no record of {args.experiment} differs from {args.rev}")
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out.with_suffix(".csv"), index=False)
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r] for r in frame.values]
    head = [
        f"Records of `{args.experiment}` re-measured since `{args.rev}` (same run key):",
        f"`python scripts/compare_records.py {' '.join(argv or sys.argv[1:])}`",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(head + markdown_lines(list(frame), cells)) + "\n")
    print(f"compare_records: {len(frame)} records compared -> {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
