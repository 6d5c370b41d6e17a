"""Replay run records: train the first steps of each record's run again, with today's code on this
machine, and compare the measured rows with the record's, value for value. A record made by an
older commit (or on another machine) that replays identically is what today's code makes; one
that does not is named with the first step and metric that differ.

    python -m ijr.claims.replay --records results/cpu/runs --steps 50 \\
        --data-root DATA --archive ../shared/data/cifar10-jpeg.tar.gz [--experiment table1_simplecnn]

Each replay composes the record's own command line (``.hydra/overrides.yaml``; where-things-go
keys replaced), refuses a record whose config composes differently today (its run key would not
be the record's), runs in a temporary runs root with an observer callback that stops it after
``--steps`` steps (:class:`StopAtStep`, outside the run key: the computation is the full run's),
and compares the rows of ``metrics.csv`` logged before that step. The replay's run is recorded as
``failed`` with the reason, so it is never taken for a finished run. Exit 1 if any record differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import yaml

#: Overrides of a record's command line that say where things go, replaced for the replay.
WHERE_KEYS = ("paths.runs", "data.root", "data.archive", "trainer.progress_bar")


class ReplayStopped(RuntimeError):
    """Raised by :class:`StopAtStep`: the replay has the steps it compares."""


class StopAtStep(pl.Callback):
    """Stop the run after ``steps`` updates by raising :class:`ReplayStopped`, so that it ends
    as a failed run (with that reason), never as a completed one."""

    def __init__(self, steps: int) -> None:
        self.steps = int(steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if int(trainer.global_step) >= self.steps:
            raise ReplayStopped(f"replay: stopped after {self.steps} steps")


@dataclass
class Replay:
    """The outcome of one record's replay: ``same`` (rows compared equal), the number of rows
    compared, and where they first differ."""

    record: Path
    same: bool
    rows: int
    detail: str


def _rows_before(path: Path, steps: int) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["step"]) < steps]
    return [{k: v for k, v in r.items() if v != ""} for r in rows]


def compare_rows(record: Path, replayed: Path, steps: int) -> tuple[bool, int, str]:
    """Compare the rows of two metrics.csv logged before ``steps``: (same, rows, first
    difference). Empty cells are absent values (a later-appearing column widens the header)."""
    want, got = _rows_before(record, steps), _rows_before(replayed, steps)
    for a, b in zip(want, got, strict=False):  # lengths compared below
        if a != b:
            keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
            first = keys[0]
            return (
                False,
                len(want),
                (
                    f"step {a.get('step')}: {first} recorded {a.get(first, '(none)')}, "
                    f"replayed {b.get(first, '(none)')} ({len(keys)} values differ)"
                ),
            )
    if len(want) != len(got):
        return (
            False,
            len(want),
            f"{len(want)} rows recorded before step {steps}, {len(got)} replayed",
        )
    return True, len(want), f"{len(want)} rows identical before step {steps}"


def replay_overrides(
    record: Path, runs: Path, data_root: str | None, archive: str | None, steps: int
) -> list[str]:
    """The record's command line, with a temporary runs root, this machine's data and the stop
    callback."""
    own = yaml.safe_load((record / ".hydra" / "overrides.yaml").read_text()) or []
    kept = [o for o in own if o.split("=", 1)[0].lstrip("+~") not in WHERE_KEYS]
    where = [f"paths.runs={runs}", "trainer.progress_bar=false"]
    config = yaml.safe_load((record / ".hydra" / "config.yaml").read_text())
    data = config.get("data") or {}
    if data_root is not None and "root" in data:
        where.append(f"data.root={data_root}")
    if archive is not None and "archive" in data:
        where.append(f"data.archive={archive}")
    stop = f"+callbacks.replay_stop={{_target_: ijr.claims.replay.StopAtStep, steps: {steps}}}"
    return [*kept, *where, stop]


def replay_record(record: Path, steps: int, data_root: str | None, archive: str | None) -> Replay:
    """Replay one record (see the module docstring)."""
    from hydra import compose, initialize_config_dir

    from ijr.claims.records import config_identity
    from ijr.rundir import compute_run_key
    from ijr.train import CONF_DIR, apply_profile, train

    with tempfile.TemporaryDirectory(prefix="ijr-replay-") as tmp:
        overrides = replay_overrides(record, Path(tmp), data_root, archive, steps)
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        if compute_run_key(apply_profile(cfg)) != config_identity(record):
            return Replay(record, False, 0, "its command line composes to another config today")
        try:
            train(cfg)
        except ReplayStopped:
            pass
        (metrics,) = Path(tmp).glob("*/*/metrics.csv")
        same, rows, detail = compare_rows(record / "metrics.csv", metrics, steps)
    return Replay(record, same, rows, detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", required=True, help="records folder, e.g. results/cpu/runs")
    parser.add_argument("--steps", type=int, default=50, help="replay the steps before this one")
    parser.add_argument("--experiment", default=None, help="only this experiment's records")
    parser.add_argument("--seed", type=int, default=None, help="only the records of this seed")
    parser.add_argument("--out", default=None, help="also write the outcomes to this CSV file")
    parser.add_argument("--data-root", default=None, help="data.root of the replays")
    parser.add_argument("--archive", default=None, help="data.archive of the replays")
    args = parser.parse_args(argv)
    pattern = f"{args.experiment or '*'}/*/metrics.csv"
    records = sorted(p.parent for p in Path(args.records).glob(pattern))
    if args.seed is not None:
        records = [r for r in records if _seed(r) == args.seed]
    if not records:
        print(f"replay: no records matching {Path(args.records) / pattern}", file=sys.stderr)
        return 2
    results = []
    for record in records:
        result = replay_record(record, args.steps, args.data_root, args.archive)
        results.append(result)
        verdict = "same" if result.same else "DIFFERS"
        name = f"{record.parent.name}/{record.name}"
        print(f"replay: {verdict:7} {name}: {result.detail}", flush=True)
    same = sum(r.same for r in results)
    print(f"replay: {same} of {len(records)} records replay identically")
    if args.out:
        _write(Path(args.out), results, args.steps)
    return 0 if same == len(results) else 1


def _seed(record: Path) -> int | None:
    seed = json.loads((record / "summary.json").read_text()).get("seed")
    return None if seed is None else int(seed)


def _write(path: Path, results: list[Replay], steps: int) -> None:
    """One row per replayed record: which, whether it replayed identically, what differed, and
    the code that replayed it."""
    from ijr.code_version import code_version

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["experiment", "record", "steps", "same", "rows", "detail", "code"])
        for r in results:
            row = [r.record.parent.name, r.record.name, steps, r.same, r.rows, r.detail]
            writer.writerow([*row, code_version()])


if __name__ == "__main__":
    sys.exit(main())
