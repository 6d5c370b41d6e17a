"""Table 2 (paper 000, adversarial training with efficient EJR): the experiment runs end to end on
a fake CIFAR-10 in torchvision's format, and ijr-report table2 aggregates hand-written runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import compose_cfg
from ijr import report
from ijr.data.fake import make_fake_cifar
from ijr.reporting import load_runs
from ijr.reporting.table2 import table2


def _write(root, key, model, adversary, method, seed, status, acc, robust, rho=None, beta=6.0):
    run = root / "table2_adversarial" / key
    (run / ".hydra").mkdir(parents=True)
    cfg = {
        "experiment_name": "table2_adversarial",
        "seed": seed,
        "model": {"name": model},
        "method": {"name": method, **({"rho": rho} if rho is not None else {})},
        "adversary": {"name": adversary, "beta": beta},
        "profile": {"name": "quick"},
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {
        "status": status,
        "run_key": key,
        "experiment": "table2_adversarial",
        "profile": "quick",
        "seed": seed,
        "final": {} if status != "completed" else {"test/acc": acc, "test/robust_acc": robust},
    }
    (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    _write(root, "at0", "preact_resnet18", "at", "sgd", 0, "completed", 0.80, 0.50)
    _write(root, "at1", "preact_resnet18", "at", "sgd", 1, "completed", 0.82, 0.52)
    _write(
        root,
        "atejr0",
        "preact_resnet18",
        "at",
        "ejr_efficient",
        0,
        "completed",
        0.81,
        0.54,
        rho=0.05,
    )
    _write(
        root, "atejr1", "preact_resnet18", "at", "ejr_efficient", 1, "failed", None, None, rho=0.05
    )
    _write(root, "tr0", "preact_resnet18", "trades", "sgd", 0, "diverged", None, None)
    _write(
        root,
        "trejr0",
        "preact_resnet18",
        "trades",
        "ejr_efficient",
        0,
        "completed",
        0.79,
        0.53,
        rho=0.1,
    )
    return root


def test_table2_cells_counts_and_paper_columns(runs_root):
    frame = table2(load_runs(runs_root))
    rows = {
        (r["method"], r["rho_reg"] if r["rho_reg"] == r["rho_reg"] else None): r
        for _, r in frame.iterrows()
    }
    at = rows[("AT", None)]
    assert at["std_mean"] == pytest.approx(81.0) and at["std_std"] == pytest.approx(
        1.41421356, rel=1e-6
    )
    assert at["pgd20_mean"] == pytest.approx(51.0)
    assert (at["paper_std"], at["paper_pgd20"], at["paper_aa"]) == (82.45, 52.85, 48.76)
    atejr = rows[("AT-EJR", 0.05)]
    assert (atejr["n_completed"], atejr["n_failed"]) == (1, 1) and atejr["paper_pgd20"] == 53.58
    trades = rows[("TRADES", None)]
    assert trades["n_diverged"] == 1 and pd.isna(trades["std_mean"])
    assert trades["paper_std"] == 82.34  # beta 6 row
    assert rows[("TRADES-EJR", 0.1)]["paper_aa"] == 49.56
    assert frame.attrs["profiles"] == ["quick"]


def test_cli_writes_table2(runs_root, tmp_path, capsys):
    out = tmp_path / "t2"
    assert report.main(["table2", "--runs", str(runs_root), "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    md = (tmp_path / "t2.md").read_text()
    assert (
        "Profile: quick." in md
        and "| PreAct ResNet-18 | AT | – | – | 81.00 ± 1.41 | 51.00 ± 1.41 | 2/0/0 | 82.45 | 52.85 | 48.76 |"
        in md
    )
    assert (tmp_path / "t2.csv").read_text().startswith("profile,model,method")
    assert r"\begin{tabular}" in (tmp_path / "t2.tex").read_text()


def test_table2_without_adversarial_runs_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    _write(tmp_path / "runs", "x", "cnn6", "none", "sgd", 0, "completed", 0.5, None)
    assert (
        report.main(["table2", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o")]) == 2
    )
    assert "no adversarially trained runs" in capsys.readouterr().err


@pytest.mark.parametrize("adversary", ["at", "trades"])
def test_the_experiment_runs_on_a_fake_cifar(tmp_path, adversary):
    from ijr.train import train

    data_root = make_fake_cifar(tmp_path / "data", n_train=32, n_test=16, seed=0).parent
    cfg = compose_cfg(
        "experiment=table2_adversarial",
        f"adversary={adversary}",
        "method=ejr_efficient",
        f"paths.runs={tmp_path / 'runs'}",
        f"data.root={data_root}",
        "data.batch_size=16",
        "data.physical_batch_size=8",
        "trainer.max_epochs=null",
        "trainer.max_steps=2",
        "trainer.eval_every_n_steps=null",
        "trainer.progress_bar=false",
        "adversary.steps=1",
        "adversary.eval_steps=2",
        "adversary.eval_size=8",
    )
    summary = train(cfg)
    assert summary["status"] == "completed", summary.get("error")
    assert 0.0 <= summary["final"]["test/robust_acc"] <= 1.0


def test_adversarial_training_rejects_synthetic_data(tmp_path):
    from ijr.train import train

    with pytest.raises(ValueError, match="pixels in"):
        train(
            compose_cfg(
                f"paths.runs={tmp_path}",
                "data=synthetic",
                "model=fcn3",
                "adversary=at",
                "trainer.max_steps=1",
            )
        )
