"""The claims machinery (ijr.claims) on synthetic run directories: every check kind passes,
fails, is not reached, lacks runs and is not run; the report's files and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ijr.claims.evaluate import COLUMNS, evaluate_all, write_claims
from ijr.claims.spec import load_experiments
from ijr.report import main as report_main

STEPS = list(range(0, 110, 10))  # 11 probes


# ----------------------------------------------------------------------------- builders
def write_run(
    runs: Path,
    experiment: str,
    key: str,
    metrics: dict[str, list],
    config: dict | None = None,
    markers: dict | None = None,
    final: dict | None = None,
    status: str = "completed",
    profile: str = "cpu",
    seed: int = 0,
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """A run directory as ijr-train writes it: .hydra/config.yaml, metrics.csv, summary.json."""
    run = runs / experiment / key
    (run / ".hydra").mkdir(parents=True)
    cfg = {"experiment_name": experiment, "seed": seed, "profile": {"name": profile}}
    for dotted, value in (config or {}).items():
        node = cfg
        *heads, last = dotted.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    steps = metrics.pop("step", STEPS)
    frame = pd.DataFrame({"step": steps, "epoch": steps, **metrics})
    frame.to_csv(run / "metrics.csv", index=False)
    summary = {
        "status": status,
        "run_key": key,
        "experiment": experiment,
        "profile": profile,
        "seed": seed,
        "markers": markers or {},
        "final": final or {},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    for name, content in (files or {}).items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(run / name, mode) as handle:
            handle.write(content)
    return run


def write_experiment(conf: Path, name: str, claims: list[dict], scale: dict | None = None) -> None:
    folder = conf / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"experiment_name": name, "claims": claims}
    if scale is not None:
        doc["cpu_scale"] = scale
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(doc))


def claim(check: str, params: dict, **extra) -> dict:
    return {
        "id": "c",
        "paper": "000 test",
        "statement": "s",
        "check": check,
        "params": params,
        **extra,
    }


def status_of(
    tmp_path: Path, check: str, params: dict, runs: list[dict], scale=None, **extra
) -> dict:
    """Evaluate one claim over synthetic runs; the claims.csv row."""
    conf, root = tmp_path / "conf", tmp_path / "runs"
    root.mkdir(parents=True, exist_ok=True)
    write_experiment(conf, "exp", [claim(check, params, **extra)], scale)
    for i, spec in enumerate(runs):
        write_run(root, spec.pop("experiment", "exp"), f"run{i}", **spec)
    frame = evaluate_all(root, "cpu", conf)
    assert list(frame.columns) == list(COLUMNS)
    return frame.iloc[0].to_dict()


SHARP_RISE = [2, 6, 10, 15, 19.5, 21, 18, 22, 19, 21, 20]  # reaches 2/eta = 20 at step 50
EOS = [20.0] * 11
JAC_COMOVE = [1, 3, 5, 7, 9, 10, 8, 11, 9, 10, 9.5]
N_SHAPE = [0.1, 0.2, 0.28, 0.3, 0.27, 0.2, 0.12, 0.06, 0.03, 0.02, 0.01]


def run_with(**metrics) -> dict:
    return {"metrics": dict(metrics)}


# one case per (check, expected status): params, the runs
CASES = {
    "reaches": {
        "pass": ({"metric": "s", "level": "t", "rtol": 0.05}, [run_with(s=SHARP_RISE, t=EOS)]),
        "fail": ({"metric": "s", "level": "t", "rtol": 0.05}, [run_with(s=[1] * 11, t=EOS)]),
        "not reached": (
            {"metric": "s", "level": 20.0, "window": ["arp_start_step", "end"]},
            [run_with(s=SHARP_RISE)],
        ),
    },
    "band": {
        "pass": (
            {
                "metric": "s",
                "level": "t",
                "lo": 0.8,
                "hi": 1.2,
                "frac": 0.9,
                "after": "first_reach",
            },
            [run_with(s=SHARP_RISE, t=EOS)],
        ),
        "fail": (
            {
                "metric": "s",
                "level": "t",
                "lo": 0.99,
                "hi": 1.01,
                "frac": 0.9,
                "after": "first_reach",
            },
            [run_with(s=SHARP_RISE, t=EOS)],
        ),
        "not reached": (
            {"metric": "s", "level": "t", "lo": 0.8, "hi": 1.2, "after": "first_reach"},
            [run_with(s=[1] * 11, t=EOS)],
        ),
    },
    "rises_then_falls": {
        "pass": ({"metric": "i", "rise": 2.0, "fall": 5.0}, [run_with(i=N_SHAPE)]),
        "fail": ({"metric": "i", "rise": 2.0, "fall": 5.0}, [run_with(i=sorted(N_SHAPE))]),
        "not reached": (
            {"metric": "i", "window": [0, "arp_end_step"]},
            [run_with(i=N_SHAPE)],
        ),
    },
    "between": {
        "pass": (
            {"metric": "i", "lo": "a", "hi": "b", "atol": 1e-6},
            [run_with(i=N_SHAPE, a=[0] * 11, b=[1] * 11)],
        ),
        "fail": ({"metric": "i", "lo": 0.05, "hi": 1.0}, [run_with(i=N_SHAPE)]),
        "not reached": (
            {"metric": "i", "lo": 0, "hi": 1, "window": ["arp_end_step", "end"]},
            [run_with(i=N_SHAPE)],
        ),
    },
    "ratio": {
        "pass": (
            {"num": "g", "den": "s", "stat": "mean", "lo": 0.9, "hi": 1.1},
            [run_with(g=EOS, s=EOS)],
        ),
        "fail": (
            {"num": "g", "den": "s", "stat": "mean", "lo": 0.9, "hi": 1.1},
            [run_with(g=[30] * 11, s=EOS)],
        ),
        "not reached": (
            {"num": "g", "den": "s", "num_stat": "at_marker:arp_end_step", "den_stat": "mean"},
            [run_with(g=EOS, s=EOS)],
        ),
    },
    "fraction": {
        "pass": (
            {"summary_key": "final.train_full/acc", "lo": 0.99, "hi": 1.0},
            [{"metrics": {"x": [0] * 11}, "final": {"train_full/acc": 1.0}}],
        ),
        "fail": (
            {"summary_key": "final.train_full/acc", "lo": 0.99, "hi": 1.0},
            [{"metrics": {"x": [0] * 11}, "final": {"train_full/acc": 0.5}}],
        ),
        "not reached": (
            {"summary_key": "markers.arp_end_step", "lo": 0},
            [{"metrics": {"x": [0] * 11}, "markers": {"arp_end_step": None}}],
        ),
    },
    "growth": {
        "pass": (
            {
                "metric": "j",
                "window": ["arp_start_step", "end"],
                "versus": [0, "arp_start_step"],
                "max_ratio": 0.5,
            },
            [
                {
                    "metrics": {"j": [0, 10, 20, 30, 40, 50, 51, 52, 53, 54, 55]},
                    "markers": {"arp_start_step": 50},
                }
            ],
        ),
        "fail": (
            {
                "metric": "j",
                "window": ["arp_start_step", "end"],
                "versus": [0, "arp_start_step"],
                "max_ratio": 0.5,
            },
            [{"metrics": {"j": list(range(0, 110, 10))}, "markers": {"arp_start_step": 50}}],
        ),
        "not reached": (
            {
                "metric": "j",
                "window": ["arp_start_step", "end"],
                "versus": [0, "arp_start_step"],
                "max_ratio": 0.5,
            },
            [{"metrics": {"j": list(range(11))}, "markers": {}}],
        ),
    },
    "co_moves": {
        "pass": (
            {"metric": "s", "other": "j", "frac": 0.9},
            [run_with(s=SHARP_RISE, j=JAC_COMOVE)],
        ),
        "fail": (
            {"metric": "s", "other": "j", "frac": 0.9},
            [run_with(s=SHARP_RISE, j=[-x for x in JAC_COMOVE])],
        ),
        "not reached": (
            {"metric": "s", "other": "j", "after": "first_reach", "level": 100.0},
            [run_with(s=SHARP_RISE, j=JAC_COMOVE)],
        ),
    },
    "steadier": {
        "pass": (
            {"metric": "l", "than": "s", "max_ratio": 0.5},
            [run_with(l=[1.0 + 0.001 * i for i in range(11)], s=SHARP_RISE)],
        ),
        "fail": (
            {"metric": "l", "than": "s", "max_ratio": 0.5},
            [run_with(l=SHARP_RISE, s=[1.0 + 0.001 * i for i in range(11)])],
        ),
        "not reached": (
            {"metric": "l", "than": "s", "after": "arp_end_step"},
            [run_with(l=EOS, s=SHARP_RISE)],
        ),
    },
    "spikes": {
        "pass": (
            {"metric": "loss", "rise": 1.1, "min_count": 2},
            [run_with(loss=[2, 1.5, 1.2, 1.5, 1.1, 1.0, 1.4, 0.9, 0.8, 0.7, 0.6])],
        ),
        "fail": (
            {"metric": "loss", "rise": 1.1, "min_count": 2},
            [run_with(loss=[2, 1.5, 1.2, 1.1, 1.0, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6])],
        ),
        "not reached": (
            {
                "metric": "loss",
                "window": ["first_reach", "end"],
                "reach": {"metric": "loss", "level": 10.0},
            },
            [run_with(loss=[1.0] * 11)],
        ),
    },
}


def _sketch(steps: list[int], oscillate_from: int) -> bytes:
    """trajectory.bin records (step, S theta) of a walk that reverses direction from a step on."""
    dim = 8
    record = np.dtype([("step", "<i8"), ("theta", "<f4", (dim,))])
    data = np.zeros(len(steps), dtype=record)
    theta = np.zeros(dim)
    drift, kick = np.eye(dim)[0], np.eye(dim)[1]
    for i, step in enumerate(steps):
        data[i] = (step, theta)
        theta = theta + (0.01 * drift + (-1) ** i * kick if step >= oscillate_from else drift)
    return data.tobytes()


def _eigvecs(salient: bool, step: int = 100, c: int = 4) -> str:
    rows = ["step,rank,eigenpair,value"]
    for i in range(c):
        for rank in range(c):
            if salient:
                value = 1.0 if rank == i else -1.0 if rank == i + 1 else 0.1
            else:
                value = -1.0 if rank == i else 1.0 if rank == i + 1 else 0.1
            rows.append(f"{step},{rank},{i},{value}")
    return "\n".join(rows) + "\n"


TRAJ_STEPS = list(range(0, 40))
CASES["trajectory"] = {
    "pass": (
        {"window": [20, 39], "min_frac_negative": 0.9},
        [
            {
                "metrics": {"step": TRAJ_STEPS, "x": [0] * 40},
                "config": {"probes.trajectory_dim": 8},
                "files": {"trajectory.bin": _sketch(TRAJ_STEPS, 20)},
            }
        ],
    ),
    "fail": (
        {"window": [0, 15], "min_frac_negative": 0.9},
        [
            {
                "metrics": {"step": TRAJ_STEPS, "x": [0] * 40},
                "config": {"probes.trajectory_dim": 8},
                "files": {"trajectory.bin": _sketch(TRAJ_STEPS, 20)},
            }
        ],
    ),
    "not reached": (
        {"window": ["arp_start_step", "end"]},
        [
            {
                "metrics": {"step": TRAJ_STEPS, "x": [0] * 40},
                "config": {"probes.trajectory_dim": 8},
                "files": {"trajectory.bin": _sketch(TRAJ_STEPS, 20)},
            }
        ],
    ),
}
CASES["salient"] = {
    "pass": (
        {"frac": 1.0},
        [{"metrics": {"x": [0] * 11}, "files": {"logit_eigvecs.csv": _eigvecs(True)}}],
    ),
    "fail": (
        {"frac": 1.0},
        [{"metrics": {"x": [0] * 11}, "files": {"logit_eigvecs.csv": _eigvecs(False)}}],
    ),
    "not reached": (
        {"step": "arp_end_step"},
        [{"metrics": {"x": [0] * 11}, "files": {"logit_eigvecs.csv": _eigvecs(True)}}],
    ),
}


def _lr_runs(values: dict[float, float], marker: bool = True) -> list[dict]:
    return [
        {
            "metrics": {"j": [v] * 11},
            "config": {"optim.lr": lr},
            "markers": {"arp_end_step": 50} if marker else {},
        }
        for lr, v in values.items()
    ]


MONO = {
    "metric": "j",
    "stat": "at_marker:arp_end_step",
    "along": "optim.lr",
    "direction": "decreasing",
    "values": [0.05, 0.1, 0.2],
}
CASES["monotone"] = {
    "pass": (MONO, _lr_runs({0.05: 30, 0.1: 20, 0.2: 10})),
    "fail": (MONO, _lr_runs({0.05: 10, 0.1: 20, 0.2: 30})),
    "not reached": (MONO, _lr_runs({0.05: 30, 0.1: 20, 0.2: 10}, marker=False)),
    "missing runs": (MONO, _lr_runs({0.05: 30, 0.1: 20})),
}


def _method_runs(acc: dict[str, list[float]], marker: bool = True) -> list[dict]:
    return [
        {
            "metrics": {"test/acc": [a] * 11},
            "config": {"method.name": method, "optim.lr": 0.1},
            "seed": seed,
            "markers": {"arp_end_step": 50} if marker else {},
        }
        for method, accs in acc.items()
        for seed, a in enumerate(accs)
    ]


BEATS = {
    "metric": "test/acc",
    "stat": "final",
    "a": {"method.name": "ejr"},
    "b": {"method.name": "sgd"},
    "pair_by": ["seed"],
    "min_pairs": 3,
}
CASES["beats"] = {
    "pass": (BEATS, _method_runs({"ejr": [0.5, 0.52, 0.51], "sgd": [0.45, 0.5, 0.5]})),
    "fail": (BEATS, _method_runs({"ejr": [0.4, 0.42, 0.41], "sgd": [0.45, 0.5, 0.5]})),
    "not reached": (
        {**BEATS, "stat": "at_marker:arp_end_step"},
        _method_runs({"ejr": [0.5] * 3, "sgd": [0.4] * 3}, marker=False),
    ),
    "missing runs": (BEATS, _method_runs({"ejr": [0.5, 0.52], "sgd": [0.45, 0.5]})),
}

PARAMS = [(check, status) for check, cases in CASES.items() for status in cases]


def test_beats_lists_the_paired_differences_in_seed_order(tmp_path):
    """Whatever the run keys' order (here the reverse of the seeds'), per seed is seed 0, 1, 2."""
    runs = _method_runs({"ejr": [0.5, 0.52, 0.51], "sgd": [0.45, 0.5, 0.5]})[::-1]
    row = status_of(tmp_path, "beats", dict(BEATS), runs)
    assert "per seed 0.05, 0.02, 0.01)" in row["measured"], row


def test_per_run_claims_list_their_runs_by_config_value(tmp_path):
    """Runs swept along a key are listed by its value (numbers by value), not by run key."""
    runs = [
        {"metrics": {"s": SHARP_RISE, "t": EOS}, "config": {"optim.lr": lr}}
        for lr in (0.2, 0.05, 0.1)
    ]
    row = status_of(tmp_path, "reaches", {"metric": "s", "level": "t", "rtol": 0.05}, runs)
    labels = [part.split("]")[0] for part in row["measured"].split("[")[1:]]
    assert labels == ["optim.lr=0.05", "optim.lr=0.1", "optim.lr=0.2"], row


@pytest.mark.parametrize("check, expected", PARAMS)
def test_check_statuses(tmp_path, check, expected):
    params, runs = CASES[check][expected]
    row = status_of(
        tmp_path, check, dict(params), [dict(r, metrics=dict(r["metrics"])) for r in runs]
    )
    assert row["status"] == expected, row
    if expected in ("pass", "fail"):
        assert row["measured"] and row["expected"]


@pytest.mark.parametrize("check", sorted(CASES))
def test_every_check_reports_missing_runs_without_runs(tmp_path, check):
    params, runs = CASES[check]["pass"]
    # runs of another profile, a failed run and a run of another experiment do not count
    others = [dict(r, metrics=dict(r["metrics"]), profile="quick") for r in runs]
    others.append(dict(runs[0], metrics=dict(runs[0]["metrics"]), status="failed"))
    others.append(dict(runs[0], metrics=dict(runs[0]["metrics"]), experiment="other"))
    row = status_of(tmp_path, check, dict(params), others)
    assert row["status"] == "missing runs", row


@pytest.mark.parametrize("check", sorted(CASES))
def test_every_check_reports_not_run_when_gpu_scale(tmp_path, check):
    params, runs = CASES[check]["pass"]
    copies = [dict(r, metrics=dict(r["metrics"])) for r in runs]
    row = status_of(tmp_path, check, dict(params), copies, scale={"gpu_scale": True})
    assert row["status"] == "not run" and "GPU scale" in row["measured"]


def test_a_run_that_lacks_a_metric_fails_saying_so(tmp_path):
    row = status_of(
        tmp_path, "reaches", {"metric": "probe/sharpness", "level": 20.0}, [run_with(x=[0] * 11)]
    )
    assert row["status"] == "fail" and "probe/sharpness" in row["measured"]


def test_select_and_min_runs(tmp_path):
    runs = _lr_runs({0.05: 30, 0.1: 20, 0.2: 10})
    params = {"metric": "j", "level": 25.0, "rtol": 0.0}
    row = status_of(
        tmp_path / "a", "reaches", params, [dict(r) for r in runs], select={"optim.lr": 0.05}
    )
    assert row["status"] == "pass"
    row = status_of(tmp_path / "b", "reaches", dict(params), [dict(r) for r in runs])
    assert row["status"] == "fail" and "[optim.lr=0.1]" in row["measured"]  # every run must pass
    row = status_of(tmp_path / "c", "reaches", {**params, "min_runs": 4}, [dict(r) for r in runs])
    assert row["status"] == "missing runs"


def test_runs_of_checks_another_experiments_runs(tmp_path):
    conf, root = tmp_path / "conf", tmp_path / "runs"
    write_experiment(
        conf, "fig2", [claim("reaches", {"metric": "s", "level": 20.0})], {"runs_of": "fig4"}
    )
    write_experiment(conf, "fig4", [])
    write_run(root, "fig4", "k", {"s": SHARP_RISE})
    frame = evaluate_all(root, "cpu", conf)
    assert frame.iloc[0]["experiment"] == "fig2" and frame.iloc[0]["status"] == "pass"


def test_metric_expressions_multiply_and_divide_left_to_right(tmp_path):
    runs = [run_with(h=[8.0] * 11, l=[2.0] * 11, j=[2.0] * 11)]
    row = status_of(tmp_path, "between", {"metric": "h / l / j", "lo": 1.99, "hi": 2.01}, runs)
    assert row["status"] == "pass"
    row = status_of(
        tmp_path / "b",
        "between",
        {"metric": "l * j * 0.5", "lo": 1.99, "hi": 2.01},
        [run_with(l=[2.0] * 11, j=[2.0] * 11)],
    )
    assert row["status"] == "pass"


def test_tracked_examples_bounds_come_from_theorem_4_1(tmp_path):
    p = np.linspace(0.1, 0.99, 20)
    good = pd.DataFrame(
        {
            "step": range(20),
            "example": 0,
            "p_top1": p,
            "impurity": np.minimum(1.5 * p * (1 - p), p),
            "p_true": p,
        }
    )
    bad = good.assign(impurity=0.4 * p * (1 - p))  # below Gini/2
    params = {
        "table": "probe_examples",
        "metric": "impurity",
        "lo": "gini_lower",
        "hi": "gini_upper",
        "atol": 1e-9,
    }
    for name, frame, expected in (("a", good, "pass"), ("b", bad, "fail")):
        runs = [
            {"metrics": {"x": [0] * 11}, "files": {"probe_examples.csv": frame.to_csv(index=False)}}
        ]
        assert status_of(tmp_path / name, "between", dict(params), runs)["status"] == expected


def test_report_writes_md_and_csv_and_cli(tmp_path, monkeypatch):
    conf, root = tmp_path / "conf", tmp_path / "runs"
    write_experiment(conf, "exp", [claim("reaches", {"metric": "s", "level": 20.0})])
    write_run(root, "exp", "k", {"s": SHARP_RISE})
    frame = evaluate_all(root, "cpu", conf)
    md, csv = write_claims(frame, tmp_path / "out", "cpu")
    assert md.name == "claims.md" and csv.name == "claims.csv"
    assert "1 claims: 1 pass" in md.read_text()
    assert list(pd.read_csv(csv).columns) == list(COLUMNS)
    monkeypatch.setattr(
        "ijr.claims.evaluate.evaluate_all", lambda runs, profile: evaluate_all(runs, profile, conf)
    )
    assert (
        report_main(
            ["claims", "--runs", str(root), "--profile", "cpu", "--out", str(tmp_path / "cli")]
        )
        == 0
    )
    assert (tmp_path / "cli" / "claims.csv").is_file()
    assert (
        report_main(["claims", "--runs", str(root), "--out", str(tmp_path / "x")]) == 2
    )  # needs --profile


def test_bad_claims_are_one_line_errors(tmp_path, capsys):
    conf, root = tmp_path / "conf", tmp_path / "runs"
    write_experiment(conf, "exp", [{"id": "c", "paper": "p", "statement": "s"}])  # no check
    root.mkdir()
    with pytest.raises(ValueError, match="lacks check"):
        evaluate_all(root, "cpu", conf)
    write_experiment(conf, "exp", [claim("no_such_check", {})])
    write_run(root, "exp", "k", {"s": SHARP_RISE})
    with pytest.raises(ValueError, match="unknown check 'no_such_check'"):
        evaluate_all(root, "cpu", conf)


def test_repository_claims_are_well_formed():
    """Every claim of conf/experiment names a known check; the required ones are encoded."""
    from ijr.claims.checks import CHECKS

    experiments = {e.name: e for e in load_experiments("cpu")}
    claims = [c for e in experiments.values() for c in e.claims]
    assert all(c.check in CHECKS for c in claims)
    for name in (
        "fig1_impurity",
        "fig2_sharpness_jacobian",
        "fig3_trajectory",
        "fig4_arp",
        "fig5_lr",
        "fig5_batch",
        "fig10_subspace",
        "fig12_norms",
        "fig15_relation",
        "fig35_mse",
        "table1_simplecnn",
        "table5_simplecnn",
    ):
        assert experiments[name].claims, name
    for e in experiments.values():  # runs_of names an experiment that has its own cpu runs
        if e.runs_of:
            target = experiments[e.runs_of]
            assert not target.gpu_scale and not target.runs_of
    assert math.isfinite(len(claims)) and len(claims) >= 40


def test_table1_paired_differences_per_seed(tmp_path):
    from ijr.claims import paired

    root = tmp_path / "runs"
    accs = {"ejr": [0.50, 0.52, 0.51], "sgd": [0.45, 0.50, 0.52], "sam": [0.49, 0.49, 0.49]}
    for i, spec in enumerate(_method_runs(accs)):
        final = {"test/acc": spec["metrics"]["test/acc"][-1]}
        write_run(root, "table1_simplecnn", f"r{i}", final=final, **spec)
    from ijr.claims.evaluate import finished_runs

    table = paired.paired_table(finished_runs(root, "cpu"))
    sgd = table[table["competitor"] == "sgd"].iloc[0]
    assert sgd["seeds"] == 3 and sgd["ejr_ahead"] == 2
    assert sgd["diff_per_seed"] == "+5.00 +2.00 -1.00"
    assert sgd["diff_mean"] == pytest.approx(2.0) and sgd["diff_std"] == pytest.approx(3.0)
    md, csv = paired.write_paired(table, tmp_path)
    assert "+2.00 ± 3.00" in md.read_text() and set(table["competitor"]) == {"sgd", "sam"}


def test_runs_whose_saved_config_carries_the_claims_are_labelled(tmp_path):
    """ijr-train saves the composed config, claims list included: grouping runs must cope."""
    runs = _lr_runs({0.05: 30, 0.1: 20, 0.2: 10})
    for r in runs:
        r["config"]["claims"] = [{"id": "c", "params": {"lo": 1}}]
    row = status_of(tmp_path, "monotone", dict(MONO), runs)
    assert row["status"] == "pass" and "0.05: 30" in row["measured"]
