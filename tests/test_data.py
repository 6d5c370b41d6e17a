"""Tests of ``ijr.data``: datasets as device tensors with deterministic seeded batches.

The real CIFAR-10 JPEG archive (``shared/data/cifar10-jpeg.tar.gz`` next to the repository) is
used when present and the tests needing it are skipped otherwise; everything else runs on
scikit-learn's bundled digits, the synthetic set, fake CIFAR pickles and tiny PNG trees.
"""

from __future__ import annotations

import math
import pickle
import re
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from ijr.data import (
    CIFAR10_CLASSES,
    DATASETS,
    DatasetNotFound,
    TensorDataModule,
    build_datamodule,
    crop_flip,
    make_fake_cifar,
)
from ijr.data.augment import draw_crop_flip
from ijr.data.config import COMMON_KEYS, DATASET_KEYS
from ijr.data.datamodule import channel_mean_std
from ijr.data.rng import generator

REPO = Path(__file__).resolve().parents[1]
_ARCHIVE_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz",
    Path("/work/shared/data/cifar10-jpeg.tar.gz"),
)
CIFAR_ARCHIVE = next((p for p in _ARCHIVE_CANDIDATES if p.is_file()), None)
needs_archive = pytest.mark.skipif(
    CIFAR_ARCHIVE is None, reason="shared/data/cifar10-jpeg.tar.gz not present"
)


def dm_for(seed: int = 0, **cfg) -> TensorDataModule:
    dm = build_datamodule(cfg, seed)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def digits_raw() -> TensorDataModule:
    """Digits without standardisation (pixel values in [0, 1]), batch 64."""
    return dm_for(name="digits", standardize=False, batch_size=64)


def _assert_one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


# ----------------------------------------------------------------------------- datasets
def test_digits_shapes_classes_and_standardisation(digits_raw):
    dm = dm_for(name="digits", batch_size=64)
    assert dm.name == "digits" and dm.in_shape == (1, 8, 8) and dm.num_classes == 10
    assert (dm.train_size, dm.test_size) == (1438, 359)  # stratified 80/20 of 1,797
    assert dm.train_x.shape == (1438, 1, 8, 8) and dm.train_x.dtype == torch.float32
    assert dm.train_y.dtype == torch.int64 and dm.test_y.shape == (359,)
    # stratified: every class appears in both splits in about the 80/20 proportion
    counts_train, counts_test = (
        torch.bincount(dm.train_y, minlength=10),
        torch.bincount(dm.test_y, minlength=10),
    )
    assert torch.all(
        (counts_test.float() / (counts_train + counts_test).float() - 0.2).abs() < 0.01
    )
    mean, std = dm.train_x.mean(dim=(0, 2, 3)), dm.train_x.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros(1), atol=1e-5) and torch.allclose(
        std, torch.ones(1), atol=1e-5
    )
    # the test split is standardised with the training statistics, not its own
    assert torch.allclose(
        dm.test_x * dm.channel_std + dm.channel_mean, digits_raw.test_x, atol=1e-5
    )
    assert digits_raw.train_x.min() >= 0 and digits_raw.train_x.max() == 1.0
    assert dm.batch_size == 64 and dm.physical_batch_size == 64 and not dm.is_full_batch
    assert dm.steps_per_epoch == math.ceil(1438 / 64)


def test_channel_statistics_in_chunks_match_torch():
    x = torch.rand(10, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [1.0, 2.0, 3.0]
    ).view(1, 3, 1, 1)
    mean, std = channel_mean_std(x, chunk_size=3)
    flat = x.double().transpose(0, 1).reshape(3, -1)
    assert torch.allclose(mean, flat.mean(1)) and torch.allclose(std, flat.std(1, unbiased=False))


def test_synthetic_is_seeded_shaped_and_learnable():
    cfg = dict(
        name="synthetic", shape=[1, 4, 4], num_classes=3, n_train=600, n_test=100, standardize=False
    )
    a, b = dm_for(**cfg), dm_for(seed=5, **cfg)
    assert (
        a.in_shape == (1, 4, 4) and a.num_classes == 3 and (a.train_size, a.test_size) == (600, 100)
    )
    assert torch.equal(a.train_x, b.train_x) and torch.equal(
        a.train_y, b.train_y
    )  # data_seed, not run seed
    c = dm_for(**{**cfg, "data_seed": 1})
    assert not torch.equal(a.train_x, c.train_x)
    assert set(a.train_y.tolist()) == {0, 1, 2}
    # labels come from a linear teacher: a least-squares linear fit separates them well
    x = torch.cat([a.train_x.flatten(1), torch.ones(600, 1)], dim=1).double()
    w = torch.linalg.lstsq(x, F.one_hot(a.train_y, 3).double()).solution
    assert ((x @ w).argmax(1) == a.train_y).float().mean() > 0.85


def test_fake_cifar10_loads_through_torchvision_format(tmp_path):
    folder = make_fake_cifar(tmp_path, n_train=50, n_test=20, seed=1)
    assert folder == tmp_path / "cifar-10-batches-py"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "batches.meta",
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ]
    with open(folder / "data_batch_1", "rb") as f:
        batch1 = pickle.load(f, encoding="latin1")
    assert batch1["data"].dtype == np.uint8 and batch1["data"].shape == (10, 3072)
    with open(folder / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"] == list(CIFAR10_CLASSES)

    dm = dm_for(name="cifar10", root=str(tmp_path), standardize=False, batch_size=10)
    assert (
        dm.in_shape == (3, 32, 32)
        and dm.num_classes == 10
        and (dm.train_size, dm.test_size) == (50, 20)
    )
    assert dm.class_names == CIFAR10_CLASSES and "cifar-10-batches-py" in dm.origin
    # the first 10 training images are data_batch_1, rows are R, G, B planes of 32x32
    expected = torch.from_numpy(batch1["data"]).reshape(10, 3, 32, 32).float() / 255
    assert torch.equal(dm.train_x[:10], expected)
    assert dm.train_y[:10].tolist() == batch1["labels"]
    sub = dm_for(name="cifar10", root=str(tmp_path), standardize=False, batch_size=5, subset=10)
    assert torch.equal(
        sub.train_x, expected
    )  # subset_mode=first: the first N of the official order


def test_fake_cifar100_variant(tmp_path):
    folder = make_fake_cifar(tmp_path, n_train=200, n_test=100, num_classes=100)
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    dm = dm_for(name="cifar100", root=str(tmp_path), batch_size=50)
    assert dm.num_classes == 100 and (dm.train_size, dm.test_size) == (200, 100)
    assert torch.bincount(dm.train_y, minlength=100).tolist() == [2] * 100
    with pytest.raises(ValueError, match="num_classes must be 10"):
        make_fake_cifar(tmp_path, 10, 10, num_classes=20)


def _write_png_tree(
    root: Path, counts: dict[str, tuple[int, int]], size=(6, 5), mode="RGB", seed=0
) -> dict:
    """root/{train,test}/<class>/<i>.png with random pixels; returns {path: uint8 array}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = {}
    for cls, (n_train, n_test) in counts.items():
        for split, n in (("train", n_train), ("test", n_test)):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                path = root / split / cls / f"{i}.png"
                Image.fromarray(arr, mode=mode).save(path)
                pixels[path] = arr
    return pixels


def test_imagefolder_tree_order_values_and_cache(tmp_path):
    # 11 training images in class "a" to check natural file order (2.png before 10.png)
    pixels = _write_png_tree(tmp_path, {"b": (3, 1), "a": (11, 2), "c": (2, 1)})
    dm = dm_for(name="imagefolder", root=str(tmp_path), standardize=False, batch_size=4)
    assert dm.class_names == ("a", "b", "c") and dm.in_shape == (
        3,
        5,
        6,
    )  # (C, H, W) from the first image
    assert (dm.train_size, dm.test_size) == (16, 4)
    # classes interleaved round-robin, files in natural order within a class
    order = [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2)] + [
        ("a", i) for i in range(3, 11)
    ]
    assert dm.train_y.tolist() == [{"a": 0, "b": 1, "c": 2}[c] for c, _ in order]
    for k, (cls, i) in enumerate(order):
        expected = (
            torch.from_numpy(pixels[tmp_path / "train" / cls / f"{i}.png"]).permute(2, 0, 1).float()
            / 255
        )
        assert torch.equal(dm.train_x[k], expected)
    cache_files = sorted(p.name for p in (tmp_path / ".ijr_cache").iterdir())
    assert len(cache_files) == 2 and all(name.endswith(".pt") for name in cache_files)
    # a second load reads the cache and gives identical tensors
    again = dm_for(name="imagefolder", root=str(tmp_path), standardize=False, batch_size=4)
    assert torch.equal(again.train_x, dm.train_x) and torch.equal(again.test_x, dm.test_x)
    # first-N subset decodes only those images, cached under its own key
    sub = dm_for(
        name="imagefolder",
        root=str(tmp_path),
        standardize=False,
        batch_size=2,
        subset=3,
        cache=False,
    )
    assert torch.equal(sub.train_x, dm.train_x[:3])


def test_imagefolder_sizes_and_grayscale(tmp_path):
    _write_png_tree(tmp_path / "gray", {"x": (2, 1), "y": (2, 1)}, size=(7, 7), mode="L")
    dm = dm_for(name="imagefolder", root=str(tmp_path / "gray"), batch_size=2)
    assert dm.in_shape == (1, 7, 7)
    rgb = dm_for(
        name="imagefolder", root=str(tmp_path / "gray"), batch_size=2, channels=3, image_size=4
    )
    assert rgb.in_shape == (3, 4, 4)
    mixed = tmp_path / "mixed"
    _write_png_tree(mixed, {"x": (2, 1)}, size=(6, 6))
    _write_png_tree(mixed, {"y": (1, 1)}, size=(8, 8), seed=1)
    with pytest.raises(ValueError, match=r"is 8x8, expected 6x6") as exc:
        dm_for(name="imagefolder", root=str(mixed), batch_size=1, cache=False)
    _assert_one_line(exc)
    assert dm_for(
        name="imagefolder", root=str(mixed), batch_size=1, image_size=[6, 6], cache=False
    ).in_shape == (3, 6, 6)


def _extract_cifar_sample(root: Path, per_class_train: int, per_class_test: int) -> None:
    """Extract the first files of every class (by name) from the real archive into root/cifar10."""
    wanted = {f"{i:04d}.jpg" for i in range(max(per_class_train, per_class_test))}
    with tarfile.open(CIFAR_ARCHIVE) as tar:
        members = []
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[3] in wanted:
                limit = per_class_train if parts[1] == "train" else per_class_test
                if int(parts[3][:4]) < limit:
                    members.append(m)
        tar.extractall(root, members=members, filter="data")


@needs_archive
def test_real_cifar10_jpeg_sample_as_imagefolder(tmp_path):
    _extract_cifar_sample(tmp_path, per_class_train=20, per_class_test=5)
    raw = dm_for(name="cifar10", root=str(tmp_path), standardize=False, batch_size=50)
    assert raw.class_names == CIFAR10_CLASSES and raw.in_shape == (3, 32, 32)
    assert (raw.train_size, raw.test_size) == (200, 50)
    assert raw.train_y[:10].tolist() == list(range(10))  # round-robin over classes
    assert torch.bincount(raw.train_y).tolist() == [20] * 10
    # pixel statistics of real CIFAR-10 (data README: mean 0.490 0.480 0.444, std 0.246 0.243 0.261)
    mean = raw.train_x.mean(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor([0.490, 0.480, 0.444]), atol=0.06)
    sub = dm_for(
        name="cifar10",
        root=str(tmp_path),
        batch_size=20,
        subset=40,
        classes=[0, 1],
        task="two_class_mse",
    )
    assert (
        sub.train_size == 40
        and sub.num_classes == 1
        and sorted(set(sub.train_y.flatten().tolist())) == [-1.0, 1.0]
    )


@pytest.mark.slow
@needs_archive
def test_real_cifar10_archive_full(tmp_path):
    cfg = dict(
        name="cifar10",
        root=str(tmp_path),
        archive=str(CIFAR_ARCHIVE),
        standardize=False,
        batch_size=128,
    )
    dm = dm_for(**cfg)
    assert (dm.train_size, dm.test_size) == (50000, 10000) and dm.steps_per_epoch == 391
    assert (
        torch.bincount(dm.train_y).tolist() == [5000] * 10
        and torch.bincount(dm.test_y).tolist() == [1000] * 10
    )
    mean, std = dm.train_x.mean(dim=(0, 2, 3)), dm.train_x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor([0.490, 0.480, 0.444]), atol=0.005)
    assert torch.allclose(std, torch.tensor([0.246, 0.243, 0.261]), atol=0.005)
    assert (tmp_path / "cifar10" / "train").is_dir() and any((tmp_path / ".ijr_cache").iterdir())
    start = time.perf_counter()
    again = dm_for(
        **{**cfg, "subset": 5000, "subset_mode": "balanced"}
    )  # served by the full-split cache
    assert time.perf_counter() - start < 30
    assert torch.bincount(again.train_y).tolist() == [500] * 10


# ----------------------------------------------------------------------------- subsets
def test_subsets_first_balanced_and_test_subset(digits_raw):
    first = dm_for(name="digits", standardize=False, subset=100, batch_size=10)
    assert torch.equal(first.train_x, digits_raw.train_x[:100]) and torch.equal(
        first.train_y, digits_raw.train_y[:100]
    )
    bal = dm_for(
        name="digits", standardize=False, subset=105, subset_mode="balanced", batch_size=10
    )
    assert torch.bincount(bal.train_y).tolist() == [11] * 5 + [10] * 5
    bal_again = dm_for(
        seed=9, name="digits", standardize=False, subset=105, subset_mode="balanced", batch_size=10
    )
    assert torch.equal(
        bal.train_x, bal_again.train_x
    )  # fixed subset_seed: independent of the run seed
    other = dm_for(
        name="digits",
        standardize=False,
        subset=105,
        subset_mode="balanced",
        subset_seed=1,
        batch_size=10,
    )
    assert not torch.equal(bal.train_x, other.train_x)
    run_seeded = [
        dm_for(
            seed=s,
            name="digits",
            subset=50,
            subset_mode="balanced",
            subset_seed=None,
            batch_size=10,
        ).train_y
        for s in (0, 1)
    ]
    assert torch.bincount(run_seeded[0]).tolist() == [5] * 10
    # every balanced example is one of the training examples (subset of the split, no duplicates)
    rows = digits_raw.train_x.flatten(1)
    match = (bal.train_x.flatten(1)[:, None, :] == rows[None, :, :]).all(-1)
    assert bool(match.any(1).all())
    test_sub = dm_for(name="digits", standardize=False, test_subset=30, batch_size=10)
    assert torch.equal(test_sub.test_x, digits_raw.test_x[:30]) and test_sub.train_size == 1438


def test_classes_filter_and_targets(digits_raw):
    dm = dm_for(name="digits", standardize=False, classes=[8, 3], batch_size=10)
    keep = (digits_raw.train_y == 8) | (digits_raw.train_y == 3)
    assert torch.equal(dm.train_x, digits_raw.train_x[keep])
    assert torch.equal(
        dm.train_y, (digits_raw.train_y[keep] == 3).long()
    )  # relabelled in list order
    assert dm.num_classes == 2 and dm.class_names == ("8", "3")

    mse = dm_for(name="digits", classes=[3, 8], task="two_class_mse", batch_size=10)
    assert (
        mse.num_classes == 1
        and mse.train_y.dtype == torch.float32
        and mse.train_y.shape == (mse.train_size, 1)
    )
    labels = digits_raw.train_y[keep]
    assert torch.equal(mse.train_y.flatten(), torch.where(labels == 3, -1.0, 1.0))
    assert mse.test_y.shape == (mse.test_size, 1) and set(mse.test_y.flatten().tolist()) == {
        -1.0,
        1.0,
    }
    x, y = mse.train_batch(0)
    assert y.shape == (10, 1)

    onehot = dm_for(name="digits", targets="onehot", batch_size=10, dtype="float64")
    assert onehot.train_y.shape == (1438, 10) and onehot.train_y.dtype == torch.float64
    assert torch.equal(onehot.train_y.argmax(1), digits_raw.train_y) and torch.all(
        onehot.train_y.sum(1) == 1
    )
    assert onehot.train_x.dtype == torch.float64 and onehot.num_classes == 10


# ----------------------------------------------------------------------------- batches
@pytest.fixture(scope="module")
def synth() -> TensorDataModule:
    return dm_for(seed=3, name="synthetic", shape=[2, 3, 3], n_train=70, n_test=30, batch_size=16)


def _positions(batch_x: torch.Tensor, train_x: torch.Tensor) -> list[int]:
    """Index in train_x of each row of batch_x (synthetic rows are all distinct)."""
    eq = (batch_x.flatten(1)[:, None, :] == train_x.flatten(1)[None, :, :]).all(-1)
    assert bool((eq.sum(1) == 1).all())
    return eq.float().argmax(1).tolist()


def test_train_batch_is_a_function_of_seed_and_step(synth):
    assert synth.steps_per_epoch == 5  # ceil(70 / 16)
    x3, y3 = synth.train_batch(3)
    again = dm_for(seed=3, name="synthetic", shape=[2, 3, 3], n_train=70, n_test=30, batch_size=16)
    for step in (3, 0, 7, 3):
        assert torch.equal(again.train_batch(step)[0], synth.train_batch(step)[0])
    assert torch.equal(synth.train_batch(3)[0], x3) and torch.equal(synth.train_batch(3)[1], y3)
    other_seed = dm_for(
        seed=4, name="synthetic", shape=[2, 3, 3], n_train=70, n_test=30, batch_size=16
    )
    assert not torch.equal(other_seed.train_batch(3)[0], x3)
    # each epoch is a permutation covering every example exactly once; epochs differ
    epochs = []
    for e in range(2):
        batches = [synth.train_batch(e * 5 + i) for i in range(5)]
        assert [b[0].shape[0] for b in batches] == [16, 16, 16, 16, 6]
        pos = sum((_positions(x, synth.train_x) for x, _ in batches), [])
        assert sorted(pos) == list(range(70))
        for x, y in batches:
            assert torch.equal(y, synth.train_y[_positions(x, synth.train_x)])
        epochs.append(pos)
    assert epochs[0] != epochs[1]
    # the documented order: batch i of epoch e is randperm(N, G("epoch", seed, e))[i*B:(i+1)*B]
    perm = torch.randperm(70, generator=generator("epoch", 3, 1))
    assert epochs[1] == perm.tolist()


def test_drop_last_and_full_batch():
    dropped = dm_for(
        name="synthetic", shape=[1, 2, 2], n_train=70, n_test=5, batch_size=16, drop_last=True
    )
    assert dropped.steps_per_epoch == 4
    pos = sum((_positions(dropped.train_batch(i)[0], dropped.train_x) for i in range(4)), [])
    assert len(pos) == 64 and len(set(pos)) == 64
    assert set(_positions(dropped.train_batch(4)[0], dropped.train_x)) != set(
        pos[:16]
    )  # next epoch, new order

    full = dm_for(name="synthetic", shape=[1, 2, 2], n_train=70, n_test=5, batch_size="full")
    assert full.is_full_batch and full.batch_size == 70 and full.steps_per_epoch == 1
    assert full.physical_batch_size == 70
    for step in (0, 5):
        x, y = full.train_batch(step)
        assert torch.equal(x, full.train_x) and torch.equal(y, full.train_y)
    chunked = dm_for(
        name="synthetic",
        shape=[1, 2, 2],
        n_train=70,
        n_test=5,
        batch_size="full",
        physical_batch_size=32,
    )
    assert chunked.physical_batch_size == 32 and chunked.batch_size == 70
    assert dm_for(
        name="synthetic", shape=[1, 2, 2], n_train=70, n_test=5, batch_size=70
    ).is_full_batch


def test_train_dataloader_starts_at_trainer_global_step(synth):
    loader = synth.train_dataloader()
    it = iter(loader)
    for step in range(3):
        x, _ = next(it)
        assert torch.equal(x, synth.train_batch(step)[0])
    stand_in = SimpleNamespace(global_step=0)
    synth.trainer = stand_in
    try:
        loader = synth.train_dataloader()
        stand_in.global_step = 7  # read when iteration begins, not when the loader is made
        it = iter(loader)
        for step in (7, 8, 9):
            assert torch.equal(next(it)[0], synth.train_batch(step)[0])
        stand_in.global_step = 12
        assert torch.equal(next(iter(loader))[0], synth.train_batch(12)[0])
    finally:
        synth.trainer = None


def test_resume_with_lightning_continues_the_same_batches(tmp_path):
    import pytorch_lightning as pl

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)
            self.seen: list[tuple[int, torch.Tensor]] = []

        def training_step(self, batch, batch_idx):
            x, y = batch
            self.seen.append((self.trainer.global_step, x.clone()))
            return F.cross_entropy(self.lin(x.flatten(1)), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    cfg = dict(
        name="synthetic",
        shape=[1, 2, 2],
        num_classes=3,
        n_train=20,
        n_test=6,
        batch_size=8,
        augment=True,
    )
    kwargs = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    first = Recorder()
    trainer = pl.Trainer(max_steps=4, **kwargs)
    trainer.fit(first, datamodule=build_datamodule(cfg, 11))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed = Recorder()
    dm = build_datamodule(cfg, 11)
    pl.Trainer(max_steps=7, **kwargs).fit(resumed, datamodule=dm, ckpt_path=tmp_path / "last.ckpt")
    assert [s for s, _ in first.seen] == [0, 1, 2, 3] and [s for s, _ in resumed.seen] == [4, 5, 6]
    for step, x in first.seen + resumed.seen:
        assert torch.equal(x, dm.train_batch(step)[0])


def test_eval_probe_and_test_batches(synth):
    chunks = synth.eval_batches("test", 8)
    assert [x.shape[0] for x, _ in chunks] == [8, 8, 8, 6]
    assert torch.equal(torch.cat([x for x, _ in chunks]), synth.test_x)
    assert (
        len(synth.val_dataloader()) == 2 and len(list(synth.test_dataloader())) == 2
    )  # chunks of 16
    assert torch.equal(torch.cat([y for _, y in synth.eval_batches("train")]), synth.train_y)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        synth.eval_batches("val")

    probe = synth.probe_batches(size=25, chunk_size=10, seed=1)
    assert [x.shape[0] for x, _ in probe] == [10, 10, 5]
    pos = sum((_positions(x, synth.train_x) for x, _ in probe), [])
    assert pos == sorted(set(pos)) and len(pos) == 25  # distinct, in dataset order
    assert all(torch.equal(y, synth.train_y[_positions(x, synth.train_x)]) for x, y in probe)
    same = synth.probe_batches(size=25, chunk_size=7, seed=1)  # chunking does not change the set
    assert torch.equal(torch.cat([x for x, _ in same]), torch.cat([x for x, _ in probe]))
    other = synth.probe_batches(size=25, chunk_size=10, seed=2)
    assert not torch.equal(torch.cat([x for x, _ in other]), torch.cat([x for x, _ in probe]))
    assert torch.equal(torch.cat([x for x, _ in synth.probe_batches("all", 32)]), synth.train_x)
    assert sum(x.shape[0] for x, _ in synth.probe_batches(None)) == 70
    for bad in (0, 71, "some", 2.5):
        with pytest.raises(ValueError, match="probe size"):
            synth.probe_batches(size=bad)
    with pytest.raises(ValueError, match="chunk_size"):
        synth.probe_batches(size=5, chunk_size=0)


def test_device_placement():
    dm = build_datamodule(
        {"name": "synthetic", "shape": [1, 2, 2], "n_train": 10, "n_test": 4, "batch_size": 4}, 0
    )
    with pytest.raises(RuntimeError, match="setup"):
        _ = dm.train_x
    dm.setup()
    assert dm.device == torch.device("cpu") and dm.train_x.device.type == "cpu"
    dm.to("meta")
    assert all(t.device.type == "meta" for t in (dm.train_x, dm.train_y, dm.test_x, dm.test_y))
    dm.setup()  # idempotent: keeps dm.device
    assert dm.train_x.device.type == "meta" and dm.train_batch(1)[0].device.type == "meta"
    attached = build_datamodule(
        {"name": "synthetic", "shape": [1, 2, 2], "n_train": 10, "n_test": 4, "batch_size": 4}, 0
    )
    attached.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("meta")), global_step=0
    )
    attached.setup("fit")  # attached to a trainer: its root device
    assert attached.train_x.device.type == "meta" and attached.device == torch.device("meta")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_on_gpu_equal_cpu_batches():
    cfg = {"name": "synthetic", "n_train": 300, "n_test": 50, "batch_size": 64, "augment": True}
    cpu, gpu = dm_for(**cfg), dm_for(**cfg).to("cuda")
    assert gpu.train_x.is_cuda
    for step in (0, 4, 5, 11):
        xc, yc = cpu.train_batch(step)
        xg, yg = gpu.train_batch(step)
        assert xg.is_cuda and torch.equal(xg.cpu(), xc) and torch.equal(yg.cpu(), yc)


# ----------------------------------------------------------------------------- augmentation
def _reference_crop_flip(x, top, left, flip, padding, fill):
    out = []
    for b in range(x.shape[0]):
        padded = (
            fill.view(-1, 1, 1)
            .expand(x.shape[1], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding)
            .clone()
        )
        padded[:, padding:-padding, padding:-padding] = x[b]
        crop = padded[:, top[b] : top[b] + x.shape[2], left[b] : left[b] + x.shape[3]]
        out.append(crop.flip(-1) if flip[b] else crop)
    return torch.stack(out)


def test_crop_flip_matches_per_image_reference():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, 6, 5, generator=gen)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    top, left, flip = draw_crop_flip(12, 4, gen)
    assert int(top.min()) >= 0 and int(top.max()) <= 8 and flip.dtype == torch.bool
    assert torch.equal(
        crop_flip(x, top, left, flip, 4, fill), _reference_crop_flip(x, top, left, flip, 4, fill)
    )
    # no crop offset from the centre and no flip: the identity
    centre = torch.full((12,), 4)
    assert torch.equal(crop_flip(x, centre, centre, torch.zeros(12, dtype=torch.bool), 4, fill), x)
    assert torch.equal(
        crop_flip(x, centre, centre, torch.ones(12, dtype=torch.bool), 4, fill), x.flip(-1)
    )


def test_augmentation_in_batches(digits_raw):
    aug = dm_for(name="digits", augment=True, batch_size=64)
    plain = dm_for(name="digits", augment=False, batch_size=64)
    xa, ya = aug.train_batch(2)
    xp, yp = plain.train_batch(2)
    assert xa.shape == xp.shape and torch.equal(ya, yp)  # same examples, augmented pixels
    assert torch.equal(aug.train_batch(2)[0], xa)  # deterministic in (seed, step)
    assert not torch.equal(xa, xp)
    changed = (xa != xp).flatten(1).any(1).float().mean()
    assert changed > 0.8  # 1/81 * 1/2 chance of an untouched example
    spe = aug.steps_per_epoch
    aug_full = dm_for(name="digits", augment=True, batch_size="full")
    a0, a1 = aug_full.train_batch(0)[0], aug_full.train_batch(1)[0]
    assert not torch.equal(a0, a1) and a0.shape == aug_full.train_x.shape
    assert spe == math.ceil(1438 / 64)
    # padding is black in pixel space: (0 - mean) / std after standardisation
    black = (-aug.channel_mean / aug.channel_std).item()
    assert torch.allclose(aug.pad_fill, torch.tensor([black]))
    assert bool((xa == torch.tensor(black)).any())


# ----------------------------------------------------------------------------- bad input
BAD_CONFIGS = [
    ({"name": "digits", "batch_size": 0}, "batch_size must be a positive integer or 'full'"),
    ({"name": "digits", "batch_size": -5}, "batch_size must be a positive integer or 'full'"),
    ({"name": "digits", "batch_size": "half"}, "batch_size must be a positive integer or 'full'"),
    (
        {"name": "digits", "physical_batch_size": 0},
        "physical_batch_size must be a positive integer",
    ),
    (
        {"name": "digits", "physical_batch_size": -1},
        "physical_batch_size must be a positive integer",
    ),
    ({"name": "cifar11"}, "unknown dataset 'cifar11'; valid datasets: " + ", ".join(DATASETS)),
    (
        {"name": "digits", "task": "two_class_mse", "classes": [0, 1, 2]},
        "two_class_mse needs exactly 2 classes",
    ),
    (
        {"name": "digits", "task": "two_class_mse", "classes": [0, 1], "targets": "onehot"},
        "onehot does not apply",
    ),
    ({"name": "digits", "subset": 0}, "subset must be >= 1"),
    ({"name": "digits", "subset_mode": "random"}, "subset_mode must be one of first, balanced"),
    ({"name": "digits", "classes": [1, 1]}, "repeated class indices"),
    ({"name": "digits", "classes": [1]}, "at least 2 class indices"),
    ({"name": "digits", "batch_sise": 5}, "unknown data key"),
    ({"name": "digits", "root": "/data"}, "not used by dataset 'digits'"),
    ({"name": "digits", "standardize": "yes"}, "standardize must be true or false"),
    ({"name": "synthetic", "shape": [3, 32]}, "shape must be"),
    ({"name": "imagefolder"}, "data.root is required for imagefolder"),
    ({"batch_size": 4}, "has no 'name'"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_CONFIGS)
def test_bad_config_raises_clear_value_error(cfg, message):
    with pytest.raises(ValueError, match=re.escape(message)) as exc:
        build_datamodule(cfg, 0)
    _assert_one_line(exc)


BAD_AT_SETUP = [
    (
        {"name": "digits", "batch_size": 1439},
        "data.batch_size=1439 exceeds the 1438 training examples",
    ),
    (
        {"name": "digits", "subset": 5000},
        "data.subset=5000 exceeds the 1438 training examples of digits",
    ),
    (
        {"name": "digits", "test_subset": 400},
        "data.test_subset=400 exceeds the 359 test examples of digits",
    ),
    (
        {"name": "digits", "subset": 300, "classes": [0, 1]},
        "data.subset=300 exceeds the 288 training examples of digits in classes [0, 1]",
    ),
    (
        {"name": "digits", "subset": 1400, "subset_mode": "balanced"},
        "needs 140 examples of class 8 but the training examples of digits have only 139",
    ),
    (
        {"name": "digits", "task": "two_class_mse"},
        "two_class_mse needs exactly 2 classes but digits has 10",
    ),
    (
        {"name": "digits", "classes": [3, 10]},
        "data.classes [10] out of range: digits has 10 classes",
    ),
    ({"name": "digits", "subset": 1, "batch_size": 1}, "cannot standardise digits"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_AT_SETUP)
def test_bad_config_for_the_data_raises_at_setup(cfg, message):
    dm = build_datamodule(cfg, 0)
    with pytest.raises(ValueError, match=re.escape(message)) as exc:
        dm.setup()
    _assert_one_line(exc)


def test_bad_step_and_seed(synth):
    for step in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="step must be a non-negative integer"):
            synth.train_batch(step)
    with pytest.raises(ValueError, match="seed must be an integer"):
        build_datamodule({"name": "digits"}, "0")


def test_dataset_not_found_is_one_line_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    cases = [
        (
            {"name": "cifar10", "root": str(missing)},
            [
                "cifar-10-batches-py/",
                "cifar10/train/",
                "data.root=",
                "DATA_ROOT",
                "data.download=true",
            ],
        ),
        ({"name": "cifar100", "root": str(missing)}, ["cifar-100-python/", "data.root="]),
        ({"name": "mnist", "root": str(missing)}, ["MNIST/raw/", "data.root="]),
        ({"name": "imagefolder", "root": str(missing)}, ["train/<class>/"]),
        (
            {"name": "cifar10", "root": str(missing), "archive": str(missing / "c.tar.gz")},
            ["c.tar.gz does not exist"],
        ),
    ]
    for cfg, fragments in cases:
        dm = build_datamodule(cfg, 0)
        with pytest.raises(DatasetNotFound) as exc:
            dm.setup()
        msg = _assert_one_line(exc)
        assert isinstance(exc.value, ValueError)
        assert str(missing) in msg
        for fragment in fragments:
            assert fragment in msg, (fragment, msg)
    assert not missing.exists()  # looking does not create folders


def test_archive_is_extracted_once(tmp_path):
    src = tmp_path / "src"
    _write_png_tree(src / "cifar10", {c: (1, 1) for c in CIFAR10_CLASSES}, size=(32, 32))
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar10", arcname="cifar10")
    root = tmp_path / "root"
    dm = dm_for(
        name="cifar10", root=str(root), archive=str(archive), batch_size=5, standardize=False
    )
    assert (dm.train_size, dm.test_size) == (10, 10) and "ImageFolder tree" in dm.origin
    assert sorted(p.name for p in root.iterdir()) == [
        ".ijr_cache",
        "cifar10",
    ]  # no temporary folders left
    marker = root / "cifar10" / "train" / "airplane" / "0.png"
    stamp = marker.stat().st_mtime_ns
    again = dm_for(
        name="cifar10", root=str(root), archive=str(archive), batch_size=5, standardize=False
    )
    assert marker.stat().st_mtime_ns == stamp and torch.equal(again.train_x, dm.train_x)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(src / "cifar10" / "train", arcname="cifar10/train")
    with pytest.raises(ValueError, match="has no 'cifar10/test/' folder") as exc:
        dm_for(name="cifar10", root=str(tmp_path / "root2"), archive=str(bad))
    _assert_one_line(exc)


# ----------------------------------------------------------------------------- conf/data
@pytest.mark.parametrize("name", DATASETS)
def test_conf_data_yaml_has_exactly_the_dataset_keys_all_commented(name):
    path = REPO / "conf" / "data" / f"{name}.yaml"
    cfg = OmegaConf.load(path)
    assert cfg.name == name
    assert set(cfg.keys()) == set(COMMON_KEYS) | set(DATASET_KEYS[name])
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            assert "#" in line, f"uncommented key in {path.name}: {line}"
    overrides = {"root": "/somewhere"} if name == "imagefolder" else {}
    dm = build_datamodule(OmegaConf.merge(cfg, overrides), 0)
    assert dm.name == name
