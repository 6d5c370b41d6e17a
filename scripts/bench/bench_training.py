"""Training throughput of ijr against a plain hand-written PyTorch loop, in the same process.

Both train the same model from the same initial weights on the same batches (``dm.train_batch``)
with the same SGD; the plain loop is ``zero_grad / forward / loss / backward / step``. ijr runs
through ``train(cfg)`` (Lightning, manual optimization, metrics.csv logging every 10 steps, no
evaluation or checkpoints in the timed window); the window is measured by a callback from the
first timed step to the end of training, so data setup and Lightning start-up are excluded.

    python scripts/bench/bench_training.py [--steps 60] [--device cpu|cuda]
                                           [--cases cnn6_b128,cnn6_fullbatch_5k,wrn28_10_b128]

Cases (issue targets: overhead <= 10 %): cnn6 on CIFAR-shaped data at batch 128, and full-batch
GD on a 5,000-image subset in chunks of 1,000 (the default ``--cases``); ``wrn28_10_b128`` (a GPU
case: scripts/gpu_check.sh) is WRN-28-10 at batch 128. Timing-equivalent synthetic CIFAR-shaped data is
used, so the benchmark needs no dataset.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))


class StepTimer(pl.Callback):
    """Wall time from the start of step ``warmup`` to the end of training."""

    last: StepTimer | None = None

    def __init__(self, warmup: int) -> None:
        self.warmup = int(warmup)
        self.t0 = None
        self.elapsed = None
        StepTimer.last = self

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if int(trainer.global_step) == self.warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.elapsed = time.perf_counter() - self.t0


def plain_loop(dm, model, lr: float, steps: int, warmup: int, chunk: int, device) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    t0 = None
    for step in range(steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = dm.train_batch(step)
        opt.zero_grad(set_to_none=True)
        n = x.shape[0]
        for start in range(0, n, chunk):
            xc, yc = x[start : start + chunk], y[start : start + chunk]
            loss = torch.nn.functional.cross_entropy(model(xc), yc) * (xc.shape[0] / n)
            loss.backward()
        opt.step()
        if step % 10 == 0:
            float(loss)  # the same host sync ijr does when it logs
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def case(
    name: str,
    overrides: list[str],
    steps: int,
    warmup: int,
    device: str,
    runs: Path,
    model_name: str = "cnn6",
) -> dict:
    from conftest import compose_cfg
    from ijr.data import build_datamodule
    from ijr.models import build
    from ijr.train import train

    cfg = compose_cfg(
        f"paths.runs={runs}",
        "data=synthetic",
        "data.shape=[3,32,32]",
        "data.n_train=5000",
        f"model={model_name}",
        "optim.lr=0.01",
        f"trainer.max_steps={steps}",
        "trainer.eval_every_n_steps=null",
        "trainer.checkpoint=false",
        "trainer.progress_bar=false",
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        f"+callbacks.timer={{_target_: __main__.StepTimer, warmup: {warmup}}}",
        f"experiment_name=bench_{name}",
        *overrides,
    )
    summary = train(cfg)
    assert summary["status"] == "completed", summary
    ijr_time = StepTimer.last.elapsed

    dev = torch.device(device)
    dm = build_datamodule(cfg.data, int(cfg.seed))
    dm.setup()
    dm.to(dev)
    torch.manual_seed(int(cfg.seed))
    model = build(model_name, dm.num_classes, tuple(dm.in_shape)).to(dev)
    plain_time = plain_loop(dm, model, 0.01, steps, warmup, dm.physical_batch_size, dev)
    timed = steps - warmup
    return {
        "case": name,
        "plain_ms_per_step": 1000 * plain_time / timed,
        "ijr_ms_per_step": 1000 * ijr_time / timed,
        "ratio": ijr_time / plain_time,
    }


# name: (model, overrides, full batch: fewer, longer steps)
CASES = {
    "cnn6_b128": ("cnn6", ["data.batch_size=128"], False),
    "cnn6_fullbatch_5k": (
        "cnn6",
        ["data.batch_size=full", "data.physical_batch_size=1000"],
        True,
    ),
    "wrn28_10_b128": ("wrn28_10", ["data.batch_size=128"], False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--cases",
        default="cnn6_b128,cnn6_fullbatch_5k",
        help=f"comma-separated, from {','.join(CASES)}",
    )
    args = parser.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {unknown}; valid: {','.join(CASES)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            model_name, overrides, full_batch = CASES[name]
            steps = max(args.warmup + 5, args.steps // 4) if full_batch else args.steps
            warmup = min(args.warmup, 3) if full_batch else args.warmup
            rows.append(case(name, overrides, steps, warmup, args.device, Path(tmp), model_name))
    print(f"device: {args.device}, threads: {torch.get_num_threads()}")
    print(f"{'case':<20} {'plain ms/step':>14} {'ijr ms/step':>12} {'ratio':>7}  target <= 1.10")
    ok = True
    for r in rows:
        flag = "ok" if r["ratio"] <= 1.10 else "OVER"
        ok &= r["ratio"] <= 1.10
        print(
            f"{r['case']:<20} {r['plain_ms_per_step']:>14.1f} {r['ijr_ms_per_step']:>12.1f} {r['ratio']:>7.3f}  {flag}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
