"""A fake CIFAR-10 / CIFAR-100 in torchvision's exact on-disk format, for tests.

:func:`make_fake_cifar` writes the same pickles as the official python release
(``cifar-10-batches-py/data_batch_1..5``, ``test_batch``, ``batches.meta``, or
``cifar-100-python/train``, ``test``, ``meta``): dicts with the official keys, ``data`` as a
uint8 array of shape (n, 3072) in row-major R, G, B planes, labels as lists of ints. Loading it
goes through torchvision's own CIFAR reading code (see ``ijr.data.sources``); only the md5
checks, which pin the official files, are skipped.

Images are class-dependent (a random per-class template plus noise), so a model can learn them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ijr.data.sources import CIFAR10_CLASSES
from ijr.seeds import generator


def _fake_images(labels: torch.Tensor, templates: torch.Tensor, gen: torch.Generator) -> np.ndarray:
    noise = torch.randint(0, 256, (labels.shape[0], 3 * 32 * 32), generator=gen, dtype=torch.int16)
    images = (templates[labels] + noise) // 2  # mean of template and noise, stays in 0..255
    return images.to(torch.uint8).numpy()


def _fake_labels(n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Every class appears (when n >= num_classes), in a seeded order."""
    labels = torch.arange(n) % num_classes
    return labels[torch.randperm(n, generator=gen)]


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def make_fake_cifar(
    root: str | Path, n_train: int, n_test: int, num_classes: int = 10, seed: int = 0
) -> Path:
    """Write a fake CIFAR-10 (``num_classes=10``) or CIFAR-100 (``num_classes=100``) with
    ``n_train`` training and ``n_test`` test images under ``root``; returns the folder written
    (``root/cifar-10-batches-py`` or ``root/cifar-100-python``)."""
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got {num_classes}")
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    gen = generator("fake-cifar", seed, num_classes)
    templates = torch.randint(0, 256, (num_classes, 3 * 32 * 32), generator=gen, dtype=torch.int16)
    train_labels = _fake_labels(n_train, num_classes, gen)
    test_labels = _fake_labels(n_test, num_classes, gen)
    train_data = _fake_images(train_labels, templates, gen)
    test_data = _fake_images(test_labels, templates, gen)

    if num_classes == 10:
        return _write_cifar10(Path(root), train_labels, train_data, test_labels, test_data)
    return _write_cifar100(Path(root), train_labels, train_data, test_labels, test_data)


def _write_cifar10(root: Path, train_labels, train_data, test_labels, test_data) -> Path:
    """torchvision's ``cifar-10-batches-py/`` layout: five training batches and a test batch."""
    n_train, n_test = len(train_labels), len(test_labels)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, n_train, 6).astype(int)
    for b in range(5):
        lo, hi = bounds[b], bounds[b + 1]
        _dump(
            folder / f"data_batch_{b + 1}",
            {
                "batch_label": f"training batch {b + 1} of 5",
                "labels": [int(v) for v in train_labels[lo:hi]],
                "data": train_data[lo:hi],
                "filenames": [f"fake_{i:06d}.png" for i in range(lo, hi)],
            },
        )
    _dump(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": [int(v) for v in test_labels],
            "data": test_data,
            "filenames": [f"fake_test_{i:06d}.png" for i in range(n_test)],
        },
    )
    _dump(
        folder / "batches.meta",
        {
            "num_cases_per_batch": int(bounds[1] - bounds[0]),
            "label_names": list(CIFAR10_CLASSES),
            "num_vis": 3072,
        },
    )
    return folder


def _write_cifar100(root: Path, train_labels, train_data, test_labels, test_data) -> Path:
    """torchvision's ``cifar-100-python/`` layout: train, test and meta."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for split, labels, data in (
        ("train", train_labels, train_data),
        ("test", test_labels, test_data),
    ):
        _dump(
            folder / split,
            {
                "filenames": [f"fake_{split}_{i:06d}.png" for i in range(len(labels))],
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": [int(v) for v in labels],
                "coarse_labels": [int(v) // 5 for v in labels],
                "data": data,
            },
        )
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"fake_fine_{c:02d}" for c in range(100)],
            "coarse_label_names": [f"fake_coarse_{c:02d}" for c in range(20)],
        },
    )
    return folder
