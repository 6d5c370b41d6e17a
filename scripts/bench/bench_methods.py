"""Cost of one training step of each method relative to plain SGD, measured in the same process.

    .venv/bin/python scripts/bench/bench_methods.py                       # cnn6 b128, wrn28_2 b64 (CPU)
    .venv/bin/python scripts/bench/bench_methods.py --models cnn6 --rounds 9 --batch-size 128

One step = ``zero_grad; compute_gradients; optimizer.step()`` of the method's LightningModule
(SGD with momentum 0.9 and weight decay 5e-4, the yaml defaults of each method), on random
CIFAR-10-shaped inputs (3x32x32, 10 classes): timing does not depend on the pixel values.
Methods are interleaved round by round (so slow drifts of a shared machine hit all of them alike),
after ``--warmup`` untimed rounds; the table reports the median seconds per step and the ratio of
medians to SGD. Not part of the test suite. On the shared 2-core CPU single steps vary by +-30 %,
so the default is 21 rounds: with 5-7 rounds the median of a two-pass method moved between 2.0x and
2.3x from one run to the next.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ijr.methods import METHODS
from ijr.methods.base import OptimConfig
from ijr.models import build as build_model

CONF_METHOD = Path(__file__).resolve().parents[2] / "conf" / "method"
DEFAULT_METHODS = ["sgd", "sam", "asam", "ejr_efficient", "ejr_v2", "ejr", "gnp", "input_jr"]
TWO_PASS_TARGET = 2.2  # sam, asam, ejr_efficient, ejr_v2 should cost at most this many SGD steps
TWO_PASS = ("sam", "asam", "ejr_efficient", "ejr_v2")


def method_kwargs(name: str) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_METHOD / f"{name}.yaml"), resolve=True)
    cfg.pop("name")
    return cfg


def make_step(name: str, model_name: str, device: torch.device, batch_size: int):
    torch.manual_seed(0)
    model = build_model(model_name, 10, (3, 32, 32)).to(device)
    module = METHODS[name](
        model,
        optim=OptimConfig(lr=0.01, momentum=0.9, weight_decay=5e-4),
        total_steps=10_000,
        seed=0,
        **method_kwargs(name),
    )
    module.train()
    (optimizer,), _ = module.configure_optimizers()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    counter = {"step": 0}

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        module.compute_gradients(x, y, counter["step"])
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        counter["step"] += 1
        return time.perf_counter() - start

    return step


def bench(
    model_name: str, batch_size: int, methods: list[str], rounds: int, warmup: int, device
) -> dict:
    steps = {name: make_step(name, model_name, device, batch_size) for name in methods}
    times = {name: [] for name in methods}
    for r in range(warmup + rounds):
        for name in methods:
            elapsed = steps[name]()
            if r >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(ts) for name, ts in times.items()}, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn6", "wrn28_2"])
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: 128 (cnn6; wrn on GPU), 64 (wrn on CPU)",
    )
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument(
        "--rounds", type=int, default=21, help="timed steps per method (median; fewer is noisy)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"bench_methods: unknown methods {unknown}; valid: {sorted(METHODS)}")
    methods = ["sgd"] + [m for m in args.methods if m != "sgd"]
    device = torch.device(args.device)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"rounds={args.rounds} warmup={args.warmup}"
    )
    for model_name in args.models:
        batch_size = args.batch_size or (
            64 if model_name.startswith("wrn") and device.type == "cpu" else 128
        )
        medians, times = bench(model_name, batch_size, methods, args.rounds, args.warmup, device)
        base = medians["sgd"]
        print(f"\n{model_name}, batch {batch_size}, 3x32x32, 10 classes")
        print(f"{'method':<15}{'median s/step':>15}{'x SGD':>8}{'min..max x SGD':>18}  target")
        for name in methods:
            lo, hi = min(times[name]) / base, max(times[name]) / base
            target = f"<= {TWO_PASS_TARGET}" if name in TWO_PASS else ""
            flag = (
                ""
                if name not in TWO_PASS
                else ("ok" if medians[name] / base <= TWO_PASS_TARGET else "OVER")
            )
            print(
                f"{name:<15}{medians[name]:>15.4f}{medians[name] / base:>8.2f}{lo:>9.2f}..{hi:<7.2f}  {target} {flag}"
            )


if __name__ == "__main__":
    main()
