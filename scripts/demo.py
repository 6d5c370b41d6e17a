"""`make demo`: a short real training run, then where to find its run directory and curves.

Trains the 6CNN of the paper on (a 5,000-image subset of) CIFAR-10 from DATA_ROOT, downloading it
where there is network. Where CIFAR-10 is neither present nor downloadable it says so in one line
and trains on scikit-learn's bundled `digits` instead, naming it in its output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", default=str(REPO / "runs"), help="paths.runs (run directories go here)"
    )
    parser.add_argument(
        "--data-root", default=str(REPO / "data"), help="data.root (where CIFAR-10 is looked for)"
    )
    parser.add_argument(
        "--archive",
        default="",
        help="optional CIFAR-10 ImageFolder .tar.gz to extract into data-root",
    )
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    args = parser.parse_args(argv)

    from hydra import compose, initialize_config_dir

    from ijr.data import DatasetNotFound, build_datamodule
    from ijr.train import train

    common = [
        f"paths.runs={args.runs}",
        "experiment_name=demo",
        "model=cnn6",
        "optim.lr=0.04",
        "data.batch_size=128",
        f"trainer.max_steps={args.steps}",
        "trainer.eval_every_n_steps=50",
        "trainer.log_every_n_steps=10",
        "trainer.progress_bar=false",
    ]
    cifar = [
        "data=cifar10",
        f"data.root={args.data_root}",
        "data.subset=5000",
        "data.download=true",
        *([f"data.archive={args.archive}"] if args.archive else []),
    ]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=common + cifar)
        try:
            build_datamodule(cfg.data, int(cfg.seed)).setup()
            dataset = "CIFAR-10 (first 5,000 training images)"
        except DatasetNotFound as exc:
            print(
                f"demo: CIFAR-10 unavailable ({exc}); running on the bundled scikit-learn digits dataset instead"
            )
            cfg = compose("train", overrides=common + ["data=digits"])
            dataset = "scikit-learn digits (bundled, offline)"
    print(
        f"demo: training 6CNN on {dataset} for {args.steps} steps (lr 0.04, batch 128)", flush=True
    )
    summary = train(cfg)
    run_dir = Path(args.runs) / "demo" / summary["run_key"]
    png = plot_curves(run_dir)
    final = summary.get("final", {})
    print(f"demo: status {summary['status']}; dataset {dataset}")
    print(
        f"demo: final train/loss {final.get('train/loss', float('nan')):.4f}  test/acc {final.get('test/acc', float('nan')):.4f}"
    )
    print(f"demo: run directory {run_dir}")
    print(f"demo: curves        {run_dir / 'metrics.csv'} and {png}")
    return 0 if summary["status"] == "completed" else 1


def plot_curves(run_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(run_dir / "metrics.csv")
    cols = [c for c in ("train/loss", "test/loss", "test/acc", "probe/sharpness") if c in df]
    fig, axes = plt.subplots(1, len(cols), figsize=(4 * len(cols), 3))
    for ax, col in zip(axes if len(cols) > 1 else [axes], cols, strict=True):
        part = df[["step", col]].dropna()
        ax.plot(part["step"], part[col])
        ax.set_xlabel("step")
        ax.set_title(col)
    fig.tight_layout()
    out = run_dir / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    sys.exit(main())
