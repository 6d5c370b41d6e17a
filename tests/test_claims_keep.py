"""``ijr-report claims --keep-previous`` (ijr.claims.keep): claims of experiments whose runs are
not under --runs are copied from the earlier report, named in claims.md; judged afresh otherwise;
refused in one line when the config's claims changed. Rows a scale does not sweep
(``rows_not_run``): claims selecting them are ``not run``, and claims over ``values`` along the key
are judged on the other rows, saying so."""

from __future__ import annotations

import pandas as pd
import pytest

from ijr.claims.evaluate import evaluate_all, finished_runs, write_claims
from ijr.claims.keep import keep_previous
from ijr.claims.spec import load_experiments
from test_claims import EOS, SHARP_RISE, claim, run_with, write_experiment, write_run

REACHES = {"metric": "s", "level": "t", "rtol": 0.05}


def _setup(tmp_path, runs_a: bool, runs_b: bool):
    conf, root, out = tmp_path / "conf", tmp_path / "runs", tmp_path / "out"
    root.mkdir(exist_ok=True)
    write_experiment(conf, "a", [claim("reaches", REACHES, id="ca")])
    write_experiment(conf, "b", [claim("reaches", REACHES, id="cb")])
    for name, present in (("a", runs_a), ("b", runs_b)):
        if present:
            write_run(root, name, f"key_{name}", **run_with(s=SHARP_RISE, t=EOS))
    return conf, root, out


def _report(conf, root, out, keep: bool):
    frame = evaluate_all(root, "cpu", conf)
    runs = finished_runs(root, "cpu")
    kept = []
    if keep:
        frame, runs, kept = keep_previous(frame, runs, load_experiments("cpu", conf), out)
    write_claims(frame, out, "cpu", runs=runs, kept=kept)
    return frame, kept


def test_claims_without_runs_are_kept_and_named(tmp_path):
    conf, root, out = _setup(tmp_path, runs_a=True, runs_b=True)
    _report(conf, root, out, keep=False)  # the earlier session: both judged
    for run in (root / "b").iterdir():  # the next session has only a's runs
        (run / "summary.json").unlink()
    frame, kept = _report(conf, root, out, keep=True)
    assert kept == ["b"]
    assert dict(zip(frame["experiment"], frame["status"], strict=True)) == {
        "a": "pass",
        "b": "pass",
    }
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["experiment"]) == ["a", "b"]
    assert "Kept from the previous report" in (out / "claims.md").read_text()
    assert "): b." in (out / "claims.md").read_text()


def test_without_keep_the_claims_lack_runs(tmp_path):
    conf, root, out = _setup(tmp_path, runs_a=True, runs_b=False)
    frame, kept = _report(conf, root, out, keep=False)
    assert kept == [] and frame.set_index("experiment").loc["b", "status"] == "missing runs"
    assert "Kept from" not in (out / "claims.md").read_text()


def test_experiments_with_runs_are_judged_afresh(tmp_path):
    conf, root, out = _setup(tmp_path, runs_a=True, runs_b=False)
    _report(conf, root, out, keep=False)
    frame = pd.read_csv(out / "claims.csv")
    frame.loc[frame["experiment"] == "a", "status"] = "fail"  # an outdated earlier verdict
    frame.to_csv(out / "claims.csv", index=False)
    frame, kept = _report(conf, root, out, keep=True)
    assert kept == ["b"]  # b had no runs then either: its earlier "missing runs" row is kept
    assert frame.set_index("experiment").loc["a", "status"] == "pass"


def test_changed_claims_are_refused(tmp_path):
    conf, root, out = _setup(tmp_path, runs_a=True, runs_b=True)
    _report(conf, root, out, keep=False)
    for run in (root / "b").iterdir():
        (run / "summary.json").unlink()
    write_experiment(conf, "b", [claim("reaches", REACHES, id="renamed")])
    with pytest.raises(ValueError, match="claims of b .* differ"):
        _report(conf, root, out, keep=True)


def test_no_earlier_report_is_an_error(tmp_path):
    conf, root, out = _setup(tmp_path, runs_a=True, runs_b=False)
    with pytest.raises(FileNotFoundError, match="no earlier report"):
        _report(conf, root, out, keep=True)


def test_rows_outside_the_scale_are_not_run(tmp_path):
    conf, root = tmp_path / "conf", tmp_path / "runs"
    root.mkdir()
    picked = [claim("reaches", REACHES, id=f"lr{lr}", select={"optim.lr": lr}) for lr in (0.1, 0.3)]
    write_experiment(conf, "t", picked, scale={"rows_not_run": {"optim.lr": [0.3]}})
    write_run(root, "t", "k", **run_with(s=SHARP_RISE, t=EOS), config={"optim.lr": 0.1})
    frame = evaluate_all(root, "cpu", conf).set_index("claim")
    assert frame.loc["lr0.1", "status"] == "pass"
    assert frame.loc["lr0.3", "status"] == "not run"
    assert "optim.lr = 0.3 is not swept" in frame.loc["lr0.3", "measured"]


def test_table1_block_joins_the_table_and_the_paired_differences(tmp_path):
    from ijr.claims.readme import table1_block

    with pytest.raises(FileNotFoundError, match="table1.md"):
        table1_block(tmp_path)
    (tmp_path / "claims").mkdir()
    (tmp_path / "table1.md").write_text("# T\n\n| a |\n|---|\n| 1 |\n")
    assert table1_block(tmp_path) == "| a |\n|---|\n| 1 |"
    (tmp_path / "claims" / "table1_paired.md").write_text("text\n\n| b |\n|---|\n")
    assert table1_block(tmp_path) == "| a |\n|---|\n| 1 |\n\n| b |\n|---|"


def _lr_method_runs(root, diffs: dict[float, list[float]]):
    """EJR and SGD runs per learning rate and seed; EJR - SGD = the given differences."""
    for lr, per_seed in diffs.items():
        for seed, diff in enumerate(per_seed):
            for method, acc in (("ejr", 0.5 + diff), ("sgd", 0.5)):
                config = {"optim.lr": lr, "method.name": method}
                write_run(
                    root, "t", f"{method}{lr}s{seed}", {"test/acc": [acc] * 11}, config, seed=seed
                )


ALONG = {"metric": "test/acc", "stat": "final", "along": "optim.lr", "values": [0.01, 0.1, 0.3]}
SHRINKS = {**ALONG, "paired": {"a": {"method.name": "ejr"}, "b": {"method.name": "sgd"}}}
SHRINKS["direction"] = "decreasing"
EVERY_ROW = {**ALONG, "a": {"method.name": "ejr"}, "b": {"method.name": "sgd"}}
EVERY_ROW.update(pair_by=["optim.lr", "seed"], min_seeds=2)


def _along_claims(tmp_path, diffs, scale=None):
    conf, root = tmp_path / "conf", tmp_path / "runs"
    claims = [claim("monotone", SHRINKS, id="shrinks"), claim("beats", EVERY_ROW, id="every")]
    write_experiment(conf, "t", claims, scale=scale)
    _lr_method_runs(root, diffs)
    return evaluate_all(root, "cpu", conf).set_index("claim")


def test_values_outside_the_scale_are_dropped_and_said(tmp_path):
    frame = _along_claims(
        tmp_path, {0.01: [0.05, 0.04], 0.1: [0.02, 0.03]}, {"rows_not_run": {"optim.lr": [0.3]}}
    )
    for name in ("shrinks", "every"):
        assert frame.loc[name, "status"] == "pass", frame.loc[name].to_dict()
        assert "optim.lr = 0.3 not swept in profile=cpu" in frame.loc[name, "measured"]


def test_without_rows_not_run_a_missing_row_is_missing_runs(tmp_path):
    frame = _along_claims(tmp_path, {0.01: [0.05, 0.04], 0.1: [0.02, 0.03]})
    assert frame["status"].tolist() == ["missing runs", "missing runs"]
    assert "0.3" in frame.loc["every", "measured"]


def test_a_row_with_too_few_seeds_is_missing_runs(tmp_path):
    frame = _along_claims(
        tmp_path, {0.01: [0.05, 0.04], 0.1: [0.02]}, {"rows_not_run": {"optim.lr": [0.3]}}
    )
    assert frame.loc["every", "status"] == "missing runs"
    assert "fewer than 2 paired seeds at optim.lr = 0.1" in frame.loc["every", "measured"]


def test_the_kept_rows_are_still_judged(tmp_path):
    frame = _along_claims(
        tmp_path, {0.01: [-0.02, -0.01], 0.1: [0.01, 0.03]}, {"rows_not_run": {"optim.lr": [0.3]}}
    )
    assert frame.loc["shrinks", "status"] == "fail"  # -0.015 at 0.01, +0.02 at 0.1: it grows
    assert frame.loc["every", "status"] == "fail"  # EJR behind at 0.01


def test_every_row_out_of_the_scale_is_not_run(tmp_path):
    frame = _along_claims(
        tmp_path, {0.01: [0.05, 0.04]}, {"rows_not_run": {"optim.lr": [0.01, 0.1, 0.3]}}
    )
    assert frame["status"].tolist() == ["not run", "not run"]
