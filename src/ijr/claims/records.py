"""Run records: the measured files of finished runs, committed under ``results/<profile>/runs/`` so
that the claims and tables of a reproduction split over sessions (whose run directories are gone
with their machines) can be judged again from a clean clone.

    python -m ijr.claims.records --runs RUNS --profile cpu --out results/cpu/runs

A record is a run directory (``<experiment>/<run_key>/``, as under ``paths.runs``) holding only
the files of :data:`RECORD_FILES`: the resolved config, the summary, ``metrics.csv`` and the
probes' per-step artifacts (:mod:`ijr.run_artifacts`). Never copied: checkpoints (model weights),
W&B folders, ``margins/`` (per-example labels of the training set: data, not results), locks.
Only finished runs (completed or diverged) of ``profile`` are recorded.

An existing record is never overwritten. The same run key with the same measurements
(``metrics.csv`` and the artifacts byte for byte, the same status and steps) is skipped; with
other measurements it is an error naming the run: the same config measured differently (another
code version, or a nondeterministic machine) must not be mixed silently into one record. Nor is
one config recorded twice under two keys (a key computed by an older code version, whose key set
differed): records are compared by :func:`config_identity`, the run key the current code gives
their saved config.

    python -m ijr.claims.records --restore --out results/cpu/runs --runs RUNS --data-root DATA

restores the completed records into a runs root, each under the run key today's code gives its
config and data (:func:`restore_records`), so that ``ijr-train`` (and ``make claims``) skips
them instead of training them again: a reproduction split over sessions goes on from a clean
clone. A restored run holds :data:`RESTORED_FILE`; it has no checkpoint and no ``margins/``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path

import yaml

from ijr.claims.evaluate import finished_runs
from ijr.run_artifacts import EIGVEC_FILE_NAME, FILE_NAME, TRAJECTORY_FILE
from ijr.rundir import compute_run_key

#: The files a record keeps, relative to the run directory (those a run has).
RECORD_FILES = (
    ".hydra/config.yaml",
    ".hydra/overrides.yaml",
    "summary.json",
    "metrics.csv",
    FILE_NAME,
    EIGVEC_FILE_NAME,
    TRAJECTORY_FILE,
)
#: Files compared byte for byte against an existing record (the summary is compared by its
#: status and steps only: its wall time and timestamps differ between machines).
MEASURED_FILES = tuple(
    f for f in RECORD_FILES if f not in (".hydra/overrides.yaml", "summary.json")
)
SUMMARY_KEYS = ("status", "steps", "run_key")
#: Written into a run directory restored from a record (names the record); its presence tells
#: reports that the run lacks what records leave out (checkpoints, ``margins/``).
RESTORED_FILE = "RESTORED_FROM_RECORD"


class RecordConflict(RuntimeError):
    """A record of the same run key holds other measurements."""


def _summary(path: Path) -> dict:
    return {k: json.loads(path.read_text()).get(k) for k in SUMMARY_KEYS}


def _same_record(run_dir: Path, record: Path) -> list[str]:
    """The files in which ``record`` differs from ``run_dir`` (empty: the same measurements)."""
    differ = []
    for name in MEASURED_FILES:
        src, dst = run_dir / name, record / name
        if src.is_file() != dst.is_file() or (
            src.is_file() and not filecmp.cmp(src, dst, shallow=False)
        ):
            differ.append(name)
    if _summary(run_dir / "summary.json") != _summary(record / "summary.json"):
        differ.append("summary.json (status, steps)")
    return differ


def copy_record(run_dir: Path, record: Path) -> bool:
    """Copy the :data:`RECORD_FILES` of ``run_dir`` to ``record``; False when ``record`` already
    holds the same measurements; :class:`RecordConflict` when it holds others."""
    if record.exists():
        differ = _same_record(run_dir, record)
        if differ:
            raise RecordConflict(
                f"records: {record} differs from {run_dir} in {', '.join(differ)}; the same config "
                "was measured differently -- remove the record to replace it, or keep both by "
                "recording into another folder"
            )
        return False
    tmp = record.with_name(f".{record.name}.partial")  # hidden: never read as a run
    shutil.rmtree(tmp, ignore_errors=True)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / name, tmp / name)
    tmp.rename(record)  # a record appears whole or not at all
    return True


def config_identity(run_dir: Path) -> str:
    """The run key the current code gives the run's saved config (without the data fingerprint,
    which a record cannot recompute)."""
    return compute_run_key(yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text()))


def _recorded(out: Path) -> dict[tuple[str, str], Path]:
    """(experiment, config identity) -> record, for the records already in ``out``."""
    found = {}
    for config in sorted(out.glob("*/*/.hydra/config.yaml")) if out.is_dir() else []:
        record = config.parents[1]
        found[(record.parent.name, config_identity(record))] = record
    return found


def record_runs(runs_root: str | Path, profile: str, out: str | Path) -> tuple[int, int]:
    """Record every finished run of ``profile`` under ``runs_root`` into ``out``; (new, kept)."""
    runs = finished_runs(runs_root, profile)
    known = _recorded(Path(out))
    new = same = 0
    for _, row in runs.iterrows():
        run_dir = Path(row["run_dir"])
        record = Path(out) / str(row["experiment"]) / str(row["run_key"])
        twin = known.get((str(row["experiment"]), config_identity(run_dir)))
        if twin is not None and twin != record:
            raise RecordConflict(
                f"records: {run_dir} has the config of the record {twin} under another run key; "
                "one config is recorded once -- remove one of them"
            )
        if copy_record(run_dir, record):
            known[(str(row["experiment"]), config_identity(record))] = record
            new += 1
        else:
            same += 1
    return new, same


def _current_key(
    config: dict, data_root: str | None, archive: str | None, memo: dict[str, str | None]
) -> str:
    """The run key ``ijr-train`` gives ``config`` today, with the dataset read from
    ``data_root`` (and ``archive``): the config hash and the data files' fingerprint (``memo``:
    fingerprints by data settings, so the files are listed once per dataset)."""
    from ijr.data.config import parse_data_config
    from ijr.data.identity import data_identity

    data = dict(config.get("data") or {})
    if data_root is not None and "root" in data:
        data["root"] = data_root
    if archive is not None and "archive" in data:
        data["archive"] = archive
    settings = json.dumps(data, sort_keys=True, default=str)
    if settings not in memo:
        memo[settings] = data_identity(parse_data_config(data))
    return compute_run_key(config, memo[settings])


def restore_records(
    records: str | Path,
    runs_root: str | Path,
    profile: str,
    data_root: str | None = None,
    archive: str | None = None,
) -> tuple[int, int]:
    """Copy every completed record of ``profile`` in ``records`` into ``runs_root`` as
    ``<experiment>/<key>/``, ``key`` the run key of its config and data today (records made
    under an older key set move to today's key; their summary keeps the key they were made
    under, which names the record). A run directory already there is left alone, whatever it
    holds (a run trained here, or one in progress). Returns (restored, left alone)."""
    restored = kept = 0
    identities: dict[str, str | None] = {}  # data settings -> fingerprint
    for summary in sorted(Path(records).glob("*/*/summary.json")):
        record = summary.parent
        info = json.loads(summary.read_text())
        if info.get("status") != "completed" or str(info.get("profile")) != profile:
            continue
        config = yaml.safe_load((record / ".hydra" / "config.yaml").read_text())
        target = (
            Path(runs_root)
            / record.parent.name
            / _current_key(config, data_root, archive, identities)
        )
        if target.exists():
            kept += 1
            continue
        tmp = target.with_name(f".{target.name}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(record, tmp)
        (tmp / RESTORED_FILE).write_text(f"{record}\n")
        tmp.rename(target)
        restored += 1
    return restored, kept


def is_restored(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` was restored from a record (:func:`restore_records`)."""
    return (Path(run_dir) / RESTORED_FILE).is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="runs root (paths.runs)")
    parser.add_argument("--profile", required=True, help="the runs (records) of this profile")
    parser.add_argument("--out", required=True, help="records folder, e.g. results/cpu/runs")
    parser.add_argument(
        "--restore", action="store_true", help="copy the records into --runs instead (resume)"
    )
    parser.add_argument("--data-root", default=None, help="data.root of the restored runs")
    parser.add_argument("--archive", default=None, help="data.archive of the restored runs")
    args = parser.parse_args(argv)
    from ijr.data.sources import DatasetNotFound  # here: reports import this module, not the data

    try:
        if args.restore:
            done, kept = restore_records(
                args.out, args.runs, args.profile, args.data_root, args.archive
            )
            print(f"records: {done} restored into {args.runs}, {kept} already there")
            return 0
        new, same = record_runs(args.runs, args.profile, args.out)
    except (FileNotFoundError, DatasetNotFound, RecordConflict) as exc:
        print(exc if isinstance(exc, RecordConflict) else f"records: {exc}", file=sys.stderr)
        return 2
    print(f"records: {new} new, {same} already recorded, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
