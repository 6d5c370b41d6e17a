"""``TensorDataModule``: a small dataset held as tensors on the training device.

Batches are drawn by indexing device tensors (one ``index_select`` per batch, plus a vectorised
crop/flip when ``augment`` is on), never by a DataLoader with workers, so a CIFAR-10 epoch is
bounded by compute. Every batch is a deterministic function of (seed, step):

* epoch ``e = step // steps_per_epoch`` visits the training set in the order
  ``torch.randperm(N, generator=G("epoch", seed, e))``; batch ``i`` of the epoch is the slice
  ``[i * B, (i + 1) * B)`` of that permutation (the last one shorter unless ``drop_last``);
* full batch (``batch_size: full`` or B = N): the whole training set in its fixed order;
* augmentation draws its crop offsets and flips from ``G("augment", seed, step)``;

where ``G`` is a CPU ``torch.Generator`` seeded by :func:`ijr.seeds.derive_seed`. The global
RNG is never used. ``train_dataloader()`` starts at the attached trainer's ``global_step``, so a
run resumed from a checkpoint continues with exactly the batches it would have seen.

Under multi-process (DDP) training every process draws the same logical batch; sharding it
across processes is not implemented.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ijr.data.augment import random_crop_flip
from ijr.data.config import DataConfig, parse_data_config
from ijr.data.identity import data_identity
from ijr.data.sources import Source, load_source, prepare_source
from ijr.seeds import derive_seed, generator

AUGMENT_PADDING = 4
_DTYPES = {"float32": torch.float32, "float64": torch.float64}

Batch = tuple[torch.Tensor, torch.Tensor]


def build_datamodule(data_cfg: Any, seed: int) -> TensorDataModule:
    """A :class:`TensorDataModule` for ``data_cfg`` (DictConfig or dict with the keys of
    ``conf/data/*.yaml``; missing keys take their defaults) and the run ``seed``. Nothing is
    loaded until ``setup()``; bad settings raise ``ValueError`` here."""
    return TensorDataModule(parse_data_config(data_cfg), seed)


def select_subset(
    labels: torch.Tensor,
    num_classes: int,
    size: int | None,
    mode: str,
    gen: torch.Generator,
    key: str,
    description: str,
) -> torch.Tensor:
    """Positions (sorted, int64) of ``size`` examples among ``labels`` (class indices
    0..num_classes-1).

    ``first``: the first ``size``. ``balanced``: ``size // num_classes`` examples of every class
    drawn with ``gen`` (the first ``size % num_classes`` classes get one more). ``size`` None:
    all examples. ``key`` and ``description`` name the setting and the examples in errors.
    """
    n = int(labels.shape[0])
    if size is None:
        return torch.arange(n)
    if size > n:
        raise ValueError(f"{key}={size} exceeds the {n} {description}")
    if mode == "first":
        return torch.arange(size)
    per_class, extra = divmod(size, num_classes)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        want = per_class + (1 if c < extra else 0)
        if members.numel() < want:
            raise ValueError(
                f"{key}={size} with subset_mode=balanced needs {want} examples of class {c} "
                f"but the {description} have only {members.numel()}"
            )
        chosen.append(members[torch.randperm(members.numel(), generator=gen)[:want]])
    return torch.sort(torch.cat(chosen)).values


def channel_mean_std(x: torch.Tensor, chunk_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std of ``x`` (N, C, H, W) in float64, accumulated over
    chunks of examples (two passes) so no float64 copy of the whole set is made."""
    channels = x.shape[1]
    count = x.shape[0] * x.shape[2] * x.shape[3]
    total = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, x.shape[0], chunk_size):
        total += x[start : start + chunk_size].to(torch.float64).sum(dim=(0, 2, 3))
    mean = total / count
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, x.shape[0], chunk_size):
        centred = x[start : start + chunk_size].to(torch.float64) - mean.view(1, channels, 1, 1)
        squares += centred.square().sum(dim=(0, 2, 3))
    return mean, (squares / count).sqrt()


class _TrainBatches:
    """Iterable over ``dm.train_batch(s)`` for s = start, start + 1, ... (forever), where start is
    the attached trainer's ``global_step`` when iteration begins (0 without a trainer)."""

    def __init__(self, dm: TensorDataModule) -> None:
        self.dm = dm

    def __iter__(self) -> Iterator[Batch]:
        trainer = self.dm.trainer
        step = int(trainer.global_step) if trainer is not None else 0
        while True:
            yield self.dm.train_batch(step)
            step += 1


class _ChunkedBatches:
    """Re-iterable, sized sequence of (x, y) chunks of a split (views, no copies)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, chunk_size: int) -> None:
        self.x, self.y, self.chunk_size = x, y, chunk_size

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.chunk_size)

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, self.x.shape[0], self.chunk_size):
            yield self.x[start : start + self.chunk_size], self.y[start : start + self.chunk_size]


def _check_chunk_size(chunk_size: Any, default: int) -> int:
    if chunk_size is None:
        return default
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


class TensorDataModule(pl.LightningDataModule):
    """A dataset as device tensors with deterministic, seeded batches (see module docstring)."""

    def __init__(self, config: DataConfig, seed: int, device: str | torch.device = "cpu") -> None:
        super().__init__()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.config = config
        self.seed = int(seed)
        self.name = config.name
        self.device = torch.device(device)
        self._ready = False
        self.identity: str | None = None  # the files' fingerprint (ijr.data.identity), after setup
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    # ------------------------------------------------------------------ loading
    def prepare_data(self) -> None:
        """Extract / download the dataset if configured (one process per node under DDP)."""
        prepare_source(self.config)

    def setup(self, stage: str | None = None) -> None:
        """Load, subset and standardise once; then put the tensors on the trainer's root device
        (when attached to a Trainer) or on ``self.device``. Safe to call repeatedly."""
        if not self._ready:
            source = load_source(self.config)
            self._load(source)
            self.identity = data_identity(self.config, source)
            self._ready = True
        target = self.trainer.strategy.root_device if self.trainer is not None else self.device
        self.to(target)

    def _load(self, source: Source) -> None:
        """Pick the examples, then standardise, scale, encode the targets and batch them."""
        cfg = self.config
        kept = self._kept_classes(len(source.class_names))
        dtype = _DTYPES[cfg.dtype]
        train_raw, train_labels, train_idx = self._pick(source, kept, "train")
        test_raw, test_labels, test_idx = self._pick(source, kept, "test")
        train_x, test_x = self._to_float(train_raw, dtype), self._to_float(test_raw, dtype)
        self._standardise(train_x, test_x, dtype)
        self._scale_inputs(train_x, test_x)
        if cfg.task == "regression":  # real-valued targets of the source (paper 002, App. C.3)
            train_y = source.train.targets.index_select(0, train_idx).to(dtype)
            test_y = source.test.targets.index_select(0, test_idx).to(dtype)
            self.num_classes, self.target_kind = int(train_y.shape[1]), "real"
        else:
            train_y, test_y = self._targets(train_labels, test_labels, len(kept), dtype)
        self._set_batching(train_x.shape[0])
        self.class_names = tuple(source.class_names[c] for c in kept)
        self.in_shape = tuple(int(s) for s in train_x.shape[1:])
        self.task = cfg.task
        self.origin = source.origin
        self._train_x, self._train_y = train_x, train_y
        self._test_x, self._test_y = test_x, test_y

    def _kept_classes(self, num_source_classes: int) -> list[int]:
        """The source classes kept, in the order of ``data.classes`` (labels become 0..k-1)."""
        cfg = self.config
        if cfg.classes is not None:
            bad = [c for c in cfg.classes if c >= num_source_classes]
            if bad:
                raise ValueError(
                    f"data.classes {bad} out of range: {cfg.name} has {num_source_classes} classes (0..{num_source_classes - 1})"
                )
            kept = list(cfg.classes)
        else:
            kept = list(range(num_source_classes))
        if cfg.task == "two_class_mse" and len(kept) != 2:
            raise ValueError(
                f"data.task=two_class_mse needs exactly 2 classes but {cfg.name} has {len(kept)}; set data.classes=[a,b]"
            )
        return kept

    def _pick(self, source: Source, kept: list[int], split_key: str):
        """The raw images, remapped labels and source indices of ``data.subset`` (``split_key`` train) or
        ``data.test_subset`` (test) examples of the kept classes."""
        cfg = self.config
        split, size, key, split_name = (
            (source.train, cfg.subset, "subset", "training")
            if split_key == "train"
            else (source.test, cfg.test_subset, "test_subset", "test")
        )
        remap = torch.full((len(source.class_names),), -1, dtype=torch.int64)
        remap[torch.as_tensor(kept)] = torch.arange(len(kept))
        subset_seed = cfg.subset_seed if cfg.subset_seed is not None else self.seed
        which = f" of {cfg.name}" + (f" in classes {kept}" if cfg.classes is not None else "")
        labels = remap[split.labels]
        candidates = torch.nonzero(labels >= 0).flatten()
        positions = select_subset(
            labels[candidates],
            len(kept),
            size,
            cfg.subset_mode,
            generator("subset", subset_seed, split_name),
            f"data.{key}",
            f"{split_name} examples{which}",
        )
        indices = candidates[positions]
        return split.load_images(indices), labels[indices], indices

    def _standardise(self, train_x: torch.Tensor, test_x: torch.Tensor, dtype) -> None:
        """In place, with the training subset's per-channel statistics (``data.standardize``);
        sets ``channel_mean``, ``channel_std`` and the padding value of augmentation."""
        cfg = self.config
        n_train, channels = train_x.shape[0], train_x.shape[1]
        if cfg.standardize:
            mean, std = channel_mean_std(train_x)
            if n_train < 2 or bool((std == 0).any()):
                raise ValueError(
                    f"cannot standardise {cfg.name}: a channel of the {n_train} training examples is constant; set data.standardize=false"
                )
            shape = (1, channels, 1, 1)
            for x in (train_x, test_x):  # in place: _to_float returned fresh tensors
                x.sub_(mean.view(shape).to(dtype)).div_(std.view(shape).to(dtype))
            self.channel_mean, self.channel_std = mean.to(dtype), std.to(dtype)
            # augmentation pads with black pixels (raw value 0), as RandomCrop before Normalize
            self.pad_fill = (-mean / std).to(dtype)
        else:
            self.channel_mean = torch.zeros(channels, dtype=dtype)
            self.channel_std = torch.ones(channels, dtype=dtype)
            self.pad_fill = torch.zeros(channels, dtype=dtype)

    def _scale_inputs(self, train_x: torch.Tensor, test_x: torch.Tensor) -> None:
        """Input scaling (paper 002, App. C.2): after standardisation, train and test alike."""
        scale = self.config.input_scale
        if scale != 1.0:
            for x in (train_x, test_x):
                x.mul_(scale)
            # the affine map raw -> model input is now (raw - mean) / (std / scale): pixel-space
            # attacks and the padding value (a black pixel) follow it
            self.channel_std = self.channel_std / scale
            self.pad_fill = self.pad_fill * scale

    def _targets(self, train_labels, test_labels, num_kept: int, dtype):
        """Targets of ``data.task`` / ``data.targets``; sets ``num_classes`` and ``target_kind``."""
        cfg = self.config
        if cfg.task == "two_class_mse":
            # first class of data.classes (or class 0) -> -1, second -> +1
            train_y = (2.0 * train_labels.to(dtype) - 1.0).unsqueeze(1)
            test_y = (2.0 * test_labels.to(dtype) - 1.0).unsqueeze(1)
            self.num_classes = 1
            self.target_kind = "pm1"
        elif cfg.targets == "onehot":
            train_y = F.one_hot(train_labels, num_kept).to(dtype)
            test_y = F.one_hot(test_labels, num_kept).to(dtype)
            self.num_classes = num_kept
            self.target_kind = "onehot"
        else:
            train_y, test_y = train_labels, test_labels
            self.num_classes = num_kept
            self.target_kind = "index"
        return train_y, test_y

    def _set_batching(self, n_train: int) -> None:
        """Logical and physical batch sizes and steps per epoch for ``n_train`` examples."""
        cfg = self.config
        if cfg.batch_size == "full":
            batch_size = n_train
        else:
            batch_size = int(cfg.batch_size)
            if batch_size > n_train:
                raise ValueError(
                    f"data.batch_size={batch_size} exceeds the {n_train} training examples; use a smaller batch or batch_size=full"
                )
        self._batch_size = batch_size
        self._physical_batch_size = cfg.physical_batch_size or batch_size
        self._is_full_batch = batch_size == n_train
        spe = n_train // batch_size if cfg.drop_last else math.ceil(n_train / batch_size)
        self._steps_per_epoch = 1 if self._is_full_batch else spe

    @staticmethod
    def _to_float(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A new float tensor: uint8 pixels scaled to [0, 1], float images copied as they are."""
        if images.dtype == torch.uint8:
            return images.to(dtype).div_(255.0)
        return images.to(dtype, copy=True).contiguous()

    def to(self, device: str | torch.device) -> TensorDataModule:
        """Move the dataset tensors to ``device`` (and keep them there at the next ``setup``)."""
        self.device = torch.device(device)
        if self._ready:
            for attr in ("_train_x", "_train_y", "_test_x", "_test_y"):
                setattr(self, attr, getattr(self, attr).to(self.device))
            self._epoch_cache = None
        return self

    # ------------------------------------------------------------------ properties
    def _require_ready(self) -> None:
        if not self._ready:
            raise RuntimeError(f"TensorDataModule({self.name}).setup() has not been called yet")

    @property
    def train_x(self) -> torch.Tensor:
        self._require_ready()
        return self._train_x

    @property
    def train_y(self) -> torch.Tensor:
        self._require_ready()
        return self._train_y

    @property
    def test_x(self) -> torch.Tensor:
        self._require_ready()
        return self._test_x

    @property
    def test_y(self) -> torch.Tensor:
        self._require_ready()
        return self._test_y

    @property
    def train_size(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def test_size(self) -> int:
        return int(self.test_x.shape[0])

    @property
    def batch_size(self) -> int:
        self._require_ready()
        return self._batch_size

    @property
    def physical_batch_size(self) -> int:
        self._require_ready()
        return self._physical_batch_size

    @property
    def is_full_batch(self) -> bool:
        self._require_ready()
        return self._is_full_batch

    @property
    def steps_per_epoch(self) -> int:
        self._require_ready()
        return self._steps_per_epoch

    def describe(self) -> str:
        """One line: what was loaded, from where, and how it is batched."""
        self._require_ready()
        batch = "full" if self.is_full_batch else str(self.batch_size)
        return (
            f"{self.name}: {self.train_size} train / {self.test_size} test, input {tuple(self.in_shape)}, "
            f"{len(self.class_names)} classes ({self.task}, targets {self.target_kind}), batch {batch} "
            f"(physical {self.physical_batch_size}), {self.steps_per_epoch} steps/epoch, "
            f"augment={self.config.augment} (p={self.config.augment_p}), "
            f"mixup_beta={self.config.mixup_beta}, standardize={self.config.standardize}, on {self.device}; "
            f"from {self.origin}"
        )

    # ------------------------------------------------------------------ batches
    def _epoch_permutation(self, epoch: int) -> torch.Tensor:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            perm = torch.randperm(self.train_size, generator=generator("epoch", self.seed, epoch))
            self._epoch_cache = (epoch, perm.to(self.device))
        return self._epoch_cache[1]

    def train_batch(self, step: int) -> Batch:
        """The training batch of optimisation step ``step`` (0-based); see the module docstring."""
        self._require_ready()
        if isinstance(step, bool):
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        try:
            step = operator.index(step)
        except TypeError:
            raise ValueError(f"step must be a non-negative integer, got {step!r}") from None
        if step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step}")
        if self._is_full_batch:
            x, y = self._train_x, self._train_y
        else:
            epoch, i = divmod(step, self._steps_per_epoch)
            perm = self._epoch_permutation(epoch)
            idx = perm[i * self._batch_size : (i + 1) * self._batch_size]
            x = self._train_x.index_select(0, idx)
            y = self._train_y.index_select(0, idx)
        if self.config.augment:
            x = self._augment(x, step)
        if self.config.mixup_beta > 0:
            x, y = self._mixup(x, y, step)
        return x, y

    def _augment(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Crop/flip with offsets from ``G("augment", seed, step)``; with ``augment_p`` < 1 each
        example keeps its augmented version with probability p (paper 002, App. B.3), the
        choices drawn from ``G("augment_p", seed, step)`` (p = 1 draws nothing more)."""
        out = random_crop_flip(
            x, generator("augment", self.seed, step), AUGMENT_PADDING, self.pad_fill
        )
        p = self.config.augment_p
        if p == 1.0:
            return out
        u = torch.rand(x.shape[0], generator=generator("augment_p", self.seed, step))
        keep = (u < p).to(x.device).view(-1, *([1] * (x.dim() - 1)))
        return torch.where(keep, out, x)

    def mixup_draw(self, step: int, batch_size: int) -> tuple[float, torch.Tensor]:
        """Mixup's theta ~ Beta(beta, beta) (one per batch, as Zhang et al. 2018) and the
        partner permutation of step ``step``, from streams seeded by (seed, step)."""
        beta = self.config.mixup_beta
        theta = np.random.default_rng(derive_seed("mixup_theta", self.seed, step)).beta(beta, beta)
        perm = torch.randperm(batch_size, generator=generator("mixup_pair", self.seed, step))
        return float(theta), perm

    def _mixup(self, x: torch.Tensor, y: torch.Tensor, step: int) -> Batch:
        """Paper 002, App. B.3: (1 - theta)(x, y) + theta (x', y') with (x', y') the example at
        the partner position; class indices become one-hot first, so the soft label is then
        smoothed by the loss as (1 - alpha) y + alpha / C, as any label is."""
        theta, perm = self.mixup_draw(step, x.shape[0])
        perm = perm.to(x.device)
        if self.target_kind == "index":
            y = F.one_hot(y, self.num_classes).to(x.dtype)
        mixed_x = (1 - theta) * x + theta * x.index_select(0, perm)
        mixed_y = (1 - theta) * y + theta * y.index_select(0, perm)
        return mixed_x, mixed_y

    def train_dataloader(self) -> _TrainBatches:
        self._require_ready()
        return _TrainBatches(self)

    def val_dataloader(self) -> _ChunkedBatches:
        return _ChunkedBatches(self.test_x, self.test_y, self.physical_batch_size)

    def test_dataloader(self) -> _ChunkedBatches:
        return _ChunkedBatches(self.test_x, self.test_y, self.physical_batch_size)

    def eval_batches(self, split: str, chunk_size: int | None = None) -> list[Batch]:
        """The whole ``train`` or ``test`` split, unaugmented, in fixed order, in chunks of
        ``chunk_size`` (default ``physical_batch_size``)."""
        if split == "train":
            x, y = self.train_x, self.train_y
        elif split == "test":
            x, y = self.test_x, self.test_y
        else:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return list(_ChunkedBatches(x, y, _check_chunk_size(chunk_size, self.physical_batch_size)))

    def probe_batches(
        self, size: int | str | None = None, chunk_size: int | None = None, seed: int = 0
    ) -> list[Batch]:
        """A fixed subset of the training data (no augmentation) in chunks: ``size`` examples
        drawn with ``G("probe", seed)`` and kept in dataset order; ``size`` None or 'all': the
        whole training set. ``chunk_size`` defaults to ``physical_batch_size``."""
        chunk = _check_chunk_size(chunk_size, self.physical_batch_size)
        n = self.train_size
        if size is None or size == "all":
            x, y = self.train_x, self.train_y
        elif isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= n:
            raise ValueError(
                f"probe size must be an integer in [1, {n}], 'all' or None, got {size!r}"
            )
        else:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"probe seed must be an integer, got {seed!r}")
            idx = torch.sort(
                torch.randperm(n, generator=generator("probe", seed))[:size]
            ).values.to(self.device)
            x, y = self.train_x.index_select(0, idx), self.train_y.index_select(0, idx)
        return list(_ChunkedBatches(x, y, chunk))
