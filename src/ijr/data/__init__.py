"""Datasets as tensors on the training device, with deterministic seeded batches.

``build_datamodule(data_cfg, seed)`` returns a :class:`TensorDataModule` (a LightningDataModule)
for a ``data`` config (``conf/data/<name>.yaml``: cifar10, cifar100, mnist, imagefolder, digits,
synthetic). After ``dm.setup()`` the splits are ``dm.train_x/train_y/test_x/test_y`` on the
device, ``dm.train_batch(step)`` is a fixed function of (seed, step), and
``dm.train_dataloader()`` continues from the attached trainer's ``global_step``.
``make_fake_cifar`` writes a fake CIFAR-10/100 in torchvision's on-disk format for tests.
A dataset that is not on disk raises :class:`DatasetNotFound` (a ``ValueError``) with a one-line
message naming where it looked.
"""

from ijr.data.augment import crop_flip, random_crop_flip
from ijr.data.config import DATASETS, DataConfig, parse_data_config
from ijr.data.datamodule import TensorDataModule, build_datamodule
from ijr.data.fake import make_fake_cifar
from ijr.data.identity import data_identity
from ijr.data.sources import CIFAR10_CLASSES, DatasetNotFound

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DataConfig",
    "DatasetNotFound",
    "TensorDataModule",
    "build_datamodule",
    "data_identity",
    "crop_flip",
    "make_fake_cifar",
    "parse_data_config",
    "random_crop_flip",
]
