"""The parameter trajectory of Figures 3 and 27 (paper 000): the count sketch keeps distances,
trajectory.bin is resumable, probing it changes nothing, and ijr-report fig3 draws its UMAP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import compose_cfg, tiny_overrides
from ijr import report
from ijr.probes.trajectory import ParameterSketch, TrajectoryFile, read_trajectory
from ijr.reporting import figures, load_runs


def test_sketch_is_linear_and_keeps_distances():
    m, d = 20000, 1024
    sketch = ParameterSketch(m, d, seed=3)
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(m, generator=g, dtype=torch.float64),
        torch.randn(m, generator=g, dtype=torch.float64),
    )
    assert torch.allclose(sketch([2 * a - b]), 2 * sketch([a]) - sketch([b]), atol=1e-9)
    ratios = []
    for _ in range(40):
        u, v = (
            torch.randn(m, generator=g, dtype=torch.float64),
            torch.randn(m, generator=g, dtype=torch.float64),
        )
        ratios.append(float((sketch([u]) - sketch([v])).norm() / (u - v).norm()))
    ratios = np.array(ratios)
    assert np.all(np.abs(ratios - 1) < 0.2)  # about sqrt(2/D) = 4.4 % per pair
    sq = ratios**2
    assert abs(sq.mean() - 1) < 3 * sq.std(ddof=1) / np.sqrt(len(sq)) + 1e-3  # unbiased
    assert torch.equal(ParameterSketch(m, d, seed=3).bucket, sketch.bucket)  # fixed by the seed
    with pytest.raises(ValueError, match="expected 20000 parameters"):
        sketch([a[:10]])


def test_trajectory_file_truncates_and_ignores_a_torn_record(tmp_path):
    f = TrajectoryFile(tmp_path / "trajectory.bin", dim=4)
    f.truncate_from(0)
    for step in range(5):
        f.append(step, torch.full((4,), float(step)))
    steps, sk = f.read()
    assert steps.tolist() == [0, 1, 2, 3, 4] and sk[3].tolist() == [3.0] * 4
    with (tmp_path / "trajectory.bin").open("ab") as out:
        out.write(b"\x01\x02\x03")  # a killed run's half record
    assert f.read()[0].tolist() == [0, 1, 2, 3, 4]
    f.truncate_from(3)
    assert f.read()[0].tolist() == [0, 1, 2]


@pytest.fixture(scope="module")
def trajectory_runs(tmp_path_factory):
    from ijr.train import train

    runs = tmp_path_factory.mktemp("trajectory_runs")
    common = ("experiment=fig3_trajectory", "data.batch_size=full", "optim.lr=0.05")
    on = train(compose_cfg(*tiny_overrides(runs, *common, "trainer.max_steps=30")))
    off = train(compose_cfg(*tiny_overrides(runs, *common, "trainer.max_steps=30", "probes=none")))
    return runs, on, off


def test_every_step_is_sketched_and_training_is_unchanged(trajectory_runs):
    runs, on, off = trajectory_runs
    assert on["status"] == off["status"] == "completed"
    run = runs / "fig3_trajectory" / on["run_key"]
    steps, sketches = read_trajectory(run)
    assert steps.tolist() == list(range(31)) and sketches.shape == (31, 1024)
    assert np.all(np.linalg.norm(np.diff(sketches, axis=0), axis=1) > 0)  # theta moves every step

    def params(summary):
        path = runs / "fig3_trajectory" / summary["run_key"] / "checkpoints" / "last.ckpt"
        return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]

    a, b = params(on), params(off)
    assert all(torch.equal(a[k], b[k]) for k in a)
    final = ParameterSketch(sum(v.numel() for v in a.values()), 1024, 0)  # fcn3: no buffers
    assert np.allclose(final(list(a.values())).numpy(), sketches[-1], rtol=1e-5, atol=1e-5)


def test_fig3_umap_panels_and_cli(trajectory_runs, tmp_path, capsys):
    runs, on, _ = trajectory_runs
    run = runs / "fig3_trajectory" / on["run_key"]
    fig = figures.fig3(load_runs(run), windows=(None, (10, 25)))
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "UMAP 1"]
    assert [ax.get_title() for ax in panels] == ["steps 0–30", "steps 10–25"]
    assert len(panels[0].collections[0].get_offsets()) == 31
    out = tmp_path / "fig3"
    assert report.main(["fig3", "--runs", str(run), "--out", str(out), "--windows", "5:20"]) == 0, (
        capsys.readouterr().err
    )
    assert (tmp_path / "fig3.png").stat().st_size > 5000
    assert report.main(["fig3", "--runs", str(run), "--out", str(out), "--windows", "100:200"]) == 2
    assert "UMAP needs at least 4" in capsys.readouterr().err


def test_fig3_without_a_trajectory_is_a_clear_error(trajectory_runs):
    runs, _, off = trajectory_runs
    with pytest.raises(ValueError, match="trajectory"):
        figures.fig3(load_runs(runs / "fig3_trajectory" / off["run_key"]))
