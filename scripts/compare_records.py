"""Compare the run records of one experiment with their versions at an earlier git revision: the
same run (named by its sweep values, ``--keys``) measured twice, e.g. re-trained on another
machine. One row per run recorded in both, with the sweep values, each version's final metric and code, and the
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


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def _value(config: dict, dotted: str):
    for part in dotted.split("."):
        config = config[part]
    return config


def _code(summary: dict) -> str:
    return " then ".join(c[:12] for c in summary.get("code") or []) or "not recorded"


def _versions(records: Path, keys: list[str], rev: str | None) -> dict[tuple, tuple[str, dict]]:
    """(values of ``keys``) -> (record folder name, summary) for the records of one experiment,
    in the working tree (``rev`` None) or at ``rev``."""
    if rev is None:
        read = lambda path: path.read_text()  # noqa: E731
        folders = sorted(p.parent for p in records.glob("*/summary.json"))
    else:
        read = lambda path: _git("show", f"{rev}:{path.relative_to(REPO).as_posix()}")  # noqa: E731
        listed = _git("ls-tree", "-r", "--name-only", rev, "--", str(records.relative_to(REPO)))
        folders = sorted(
            {REPO / Path(f).parent for f in listed.split() if f.endswith("summary.json")}
        )
    found = {}
    for folder in folders:
        config = yaml.safe_load(read(folder / ".hydra" / "config.yaml"))
        name = tuple(_value(config, k) for k in keys)
        if name in found:
            raise SystemExit(
                f"compare_records: two records of {name} at {rev or 'now'}: add --keys"
            )
        found[name] = (folder.name, json.loads(read(folder / "summary.json")))
    return found


def compare(records: Path, rev: str, metric: str, keys: list[str]) -> pd.DataFrame:
    """A row per run (named by the values of ``keys``) recorded both at ``rev`` and now, with
    other measurements."""
    old, new = _versions(records, keys, rev), _versions(records, keys, None)
    short = _git("rev-parse", "--short", rev).strip()
    rows = []
    for name in sorted(set(old) & set(new)):
        (old_key, before), (new_key, after) = old[name], new[name]
        if before == after:
            continue  # the same record: nothing re-measured
        rows.append(
            dict(zip(keys, name, strict=True))
            | {
                f"{metric} ({short})": before["final"][metric],
                f"{metric} (now)": after["final"][metric],
                "difference": after["final"][metric] - before["final"][metric],
                f"record ({short})": old_key,
                "record (now)": new_key,
                f"code ({short})": _code(before),
                "code (now)": _code(after),
            }
        )
    return pd.DataFrame(rows)


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
        f"Records of `{args.experiment}` re-measured since `{args.rev}`:",
        f"`python scripts/compare_records.py {' '.join(argv or sys.argv[1:])}`",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(head + markdown_lines(list(frame), cells)) + "\n")
    print(f"compare_records: {len(frame)} records compared -> {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
