"""The dataset's identity for the run key: a fingerprint of the files a run reads, not of where
they are.

``data.root`` is left out of the run key (moving the data must keep the key), but for a dataset
read from disk the files *are* the dataset: two ImageFolder roots, or a fake and the real
CIFAR-10 under the same config, are different runs. :func:`data_identity` hashes, for every file
the dataset is read from, its path relative to the dataset folder and its size, plus a content
sample (whole small files, evenly spaced; start, middle and end of large ones). Datasets fully
determined by the config (``digits``, ``synthetic``) have no identity (``None``), so their keys
are the config hash alone.

Computing it lists and ``stat``s the files (what loading does anyway) and reads the sample; the
result is memoised per process, keyed by the listing (relative paths, sizes, mtimes), so a local
sweep over one dataset samples its content once and a changed file is noticed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ijr.data.config import DataConfig

IDENTITY_VERSION = 1
SAMPLED_FILES = 64  # small files read whole for the content sample (evenly spaced)
SMALL_FILE_BYTES = 1 << 20  # files up to 1 MiB are read whole when sampled
CHUNK_BYTES = 1 << 16  # bytes read at the start, middle and end of a large file
_MEMO: dict[str, str] = {}


def _listing(files: Sequence[Path], base: Path) -> list[tuple[str, int, int]]:
    out = []
    for f in files:
        st = f.stat()
        out.append((f.relative_to(base).as_posix(), int(st.st_size), int(st.st_mtime_ns)))
    return out


def _sample(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        if size <= SMALL_FILE_BYTES:
            return f.read()
        parts = []
        for offset in (0, size // 2, max(0, size - CHUNK_BYTES)):
            f.seek(offset)
            parts.append(f.read(CHUNK_BYTES))
        return b"".join(parts)


def fingerprint_files(kind: str, files: Sequence[Path], base: Path) -> str:
    """sha256 (20 hex digits) of ``kind``, every file's relative path and size, and a content
    sample of at most :data:`SAMPLED_FILES` files; memoised on the listing (mtimes included)."""
    listing = _listing(files, base)
    memo_key = hashlib.sha256(repr((kind, str(base), listing)).encode()).hexdigest()
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    h = hashlib.sha256(f"ijr-data-identity-v{IDENTITY_VERSION}|{kind}|{len(files)}\n".encode())
    for rel, size, _mtime in listing:
        h.update(f"{rel}|{size}\n".encode())
    stride = max(1, len(files) // SAMPLED_FILES)
    for i in range(0, len(files), stride):
        h.update(hashlib.sha256(_sample(files[i], listing[i][1])).digest())
    _MEMO[memo_key] = h.hexdigest()[:20]
    return _MEMO[memo_key]


def _tree_files(tree: Path) -> list[Path]:
    from ijr.data.sources import list_image_tree

    return [f for split in ("train", "test") for f in list_image_tree(tree / split)[1]]


def _torchvision_files(folder: Path, dataset_cls) -> list[Path]:
    names = [n for n, _ in dataset_cls.train_list + dataset_cls.test_list]
    return [folder / n for n in [*names, dataset_cls.meta["filename"]]]


def _dataset_files(cfg: DataConfig) -> tuple[str, list[Path], Path]:
    """(format, files, folder they are relative to) of a dataset read from disk."""
    from ijr.data import sources

    if cfg.name == "cifar10":
        kind, where = sources._locate_cifar10(cfg)
        if kind == "tree":
            return "cifar10-tree", _tree_files(where), where
        cls = sources._cifar_classes()[0]
        folder = where / cls.base_folder
        return "cifar10-pickles", _torchvision_files(folder, cls), folder
    if cfg.name == "cifar100":
        cls = sources._cifar_classes()[1]
        folder = sources._locate_torchvision_cifar(cfg, cls, "CIFAR-100") / cls.base_folder
        return "cifar100-pickles", _torchvision_files(folder, cls), folder
    if cfg.name == "mnist":
        folder = sources._locate_mnist(cfg) / "MNIST" / "raw"
        return "mnist-idx", [folder / n for n in sources._MNIST_FILES], folder
    root = sources._root(cfg)
    sources._require_imagefolder(root)
    return "imagefolder", _tree_files(root), root


def data_identity(cfg: DataConfig, source=None) -> str | None:
    """The identity of the dataset ``cfg`` reads (see the module docstring), or ``None`` for a
    dataset the config alone determines (digits, synthetic). ``source``: the opened
    :class:`~ijr.data.sources.Source`, whose image-tree listing is reused (the same files in the
    same order as listing them here). Raises the loaders' one-line
    :class:`~ijr.data.DatasetNotFound` when the data is not there."""
    if cfg.name in ("digits", "synthetic", "points"):
        return None
    if source is not None and source.listed_files:
        kind = "cifar10-tree" if cfg.name == "cifar10" else "imagefolder"
        return fingerprint_files(kind, source.listed_files, source.listed_base)
    kind, files, base = _dataset_files(cfg)
    return fingerprint_files(kind, files, base)
