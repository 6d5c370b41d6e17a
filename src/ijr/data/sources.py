"""Where the examples come from: torchvision's on-disk formats, ImageFolder trees, scikit-learn's
bundled digits, and a seeded synthetic set.

:func:`load_source` returns a :class:`Source`: class names, the input shape and, per split, the
labels plus a function that loads the images of given example indices. Labels are known without
decoding any image, so subsets are chosen first and an ImageFolder tree decodes only the images
it needs. Images come back as ``uint8`` (pixel values 0..255) or ``float32`` (already scaled,
e.g. digits in [0, 1]); :mod:`ijr.data.datamodule` turns them into standardised tensors.

Canonical example order (what ``subset_mode: first`` takes the first N of):

* torchvision CIFAR-10/100 and MNIST: the order of the official files (so ``cifar10`` with
  ``subset: 5000`` is Cohen et al.'s cifar10-5k);
* ImageFolder trees (including the CIFAR-10 JPEG tree): there is no canonical order across
  classes, so files are sorted naturally within each class and classes are interleaved
  round-robin (first file of every class, then the second of every class, ...); the first N are
  therefore about N / C per class;
* digits: the seeded stratified split below, in the original order within each split;
* synthetic: generation order.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from ijr.data.config import DataConfig
from ijr.seeds import generator

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
CACHE_DIRNAME = ".ijr_cache"
DIGITS_TEST_FRACTION = 0.2
_CACHE_FORMAT_VERSION = 1
_HOW_TO_PROVIDE = "set data.root=... or DATA_ROOT, or data.download=true with network"


class DatasetNotFound(ValueError):
    """The dataset is not on disk (and could not be downloaded); the message is one line naming
    the paths looked at and how to provide the data."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass
class SourceSplit:
    """One split: ``labels`` (int64, shape (N,)) and ``load_images(indices)`` returning the
    images of those example indices as a (n, C, H, W) uint8 or float32 CPU tensor."""

    labels: torch.Tensor
    load_images: Callable[[torch.Tensor], torch.Tensor]
    targets: torch.Tensor | None = None  # real-valued targets (N, d) of a regression source

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Source:
    name: str
    class_names: tuple[str, ...]
    in_shape: tuple[int, int, int]
    train: SourceSplit
    test: SourceSplit
    origin: str  # where the examples came from, for logs and error messages
    # the files listed while opening an image tree and their folder (ijr.data.identity reuses
    # them instead of listing the tree again); empty for other formats
    listed_files: tuple[Path, ...] = ()
    listed_base: Path | None = None


def load_source(cfg: DataConfig) -> Source:
    """Locate (extract / download if configured) and open the dataset named by ``cfg.name``."""
    loaders = {
        "cifar10": _load_cifar10,
        "cifar100": _load_cifar100,
        "mnist": _load_mnist,
        "imagefolder": _load_imagefolder,
        "digits": _load_digits,
        "synthetic": _load_synthetic,
        "points": _load_points,
    }
    return loaders[cfg.name](cfg)


def prepare_source(cfg: DataConfig) -> None:
    """Make the data available on disk (extract the archive / download) without loading it;
    what ``LightningDataModule.prepare_data`` runs on one process per node."""
    if cfg.name == "cifar10":
        _locate_cifar10(cfg)
    elif cfg.name == "cifar100":
        _locate_torchvision_cifar(cfg, _cifar_classes()[1], "CIFAR-100")
    elif cfg.name == "mnist":
        _locate_mnist(cfg)


# --------------------------------------------------------------------------- helpers
def _tensor_split(images: torch.Tensor, labels: torch.Tensor) -> SourceSplit:
    return SourceSplit(
        labels=labels.to(torch.int64), load_images=lambda idx: images.index_select(0, idx)
    )


def _root(cfg: DataConfig) -> Path:
    assert cfg.root is not None
    return Path(cfg.root).expanduser().absolute()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- torchvision CIFAR
def _cifar_classes():
    """torchvision's CIFAR classes with the per-file md5 checks turned off.

    torchvision verifies the md5 of every batch file against the official release; a re-packed
    copy (or the test fixture of :func:`ijr.data.make_fake_cifar`) would be rejected although its
    format is identical. These subclasses keep torchvision's reading code and only check that the
    files exist; ``download()`` still verifies the md5 of the downloaded archive.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    class CIFAR10Files(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    class CIFAR100Files(CIFAR100):
        train_list = [[name, None] for name, _ in CIFAR100.train_list]
        test_list = [[name, None] for name, _ in CIFAR100.test_list]
        meta = {**CIFAR100.meta, "md5": None}

    return CIFAR10Files, CIFAR100Files


def _cifar_files_present(root: Path, dataset_cls) -> bool:
    folder = root / dataset_cls.base_folder
    names = [n for n, _ in dataset_cls.train_list + dataset_cls.test_list] + [
        dataset_cls.meta["filename"]
    ]
    return all((folder / n).is_file() for n in names)


def _download_torchvision(dataset_cls, root: Path, label: str, looked: str) -> None:
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        dataset_cls(str(root), train=True, download=True)
    except (URLError, OSError, RuntimeError) as exc:
        if created and not any(root.iterdir()):
            root.rmdir()  # leave no empty folder behind a failed download
        raise DatasetNotFound(
            f"{label} not found under {root} (looked for {looked}) and data.download=true failed ({_one_line(exc)}); "
            f"set data.root=... or DATA_ROOT to where it is"
        ) from None


def _locate_torchvision_cifar(cfg: DataConfig, dataset_cls, label: str) -> Path:
    root = _root(cfg)
    if _cifar_files_present(root, dataset_cls):
        return root
    looked = f"{dataset_cls.base_folder}/"
    if cfg.download:
        _download_torchvision(dataset_cls, root, label, looked)
        return root
    raise DatasetNotFound(
        f"{label} not found under {root} (looked for {looked}); {_HOW_TO_PROVIDE}"
    )


def _torchvision_cifar_source(name: str, dataset_cls, root: Path) -> Source:
    splits = []
    for train in (True, False):
        ds = dataset_cls(str(root), train=train, download=False)
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets, dtype=torch.int64)
        splits.append(_tensor_split(images, labels))
        class_names = tuple(ds.classes)
    return Source(
        name=name,
        class_names=class_names,
        in_shape=(3, 32, 32),
        train=splits[0],
        test=splits[1],
        origin=f"torchvision files in {root / dataset_cls.base_folder}",
    )


def _load_cifar100(cfg: DataConfig) -> Source:
    cls = _cifar_classes()[1]
    root = _locate_torchvision_cifar(cfg, cls, "CIFAR-100")
    return _torchvision_cifar_source("cifar100", cls, root)


def _cifar10_tree_present(root: Path) -> bool:
    return (root / "cifar10" / "train").is_dir() and (root / "cifar10" / "test").is_dir()


def _locate_cifar10(cfg: DataConfig) -> tuple[str, Path]:
    """("pickles", root) or ("tree", root/"cifar10"); extracts/downloads if configured.

    Order: torchvision's ``cifar-10-batches-py/`` under root; the ImageFolder tree
    ``cifar10/{train,test}/<class>/`` under root; ``data.archive`` (a .tar.gz of that tree,
    extracted into root once); ``data.download=true`` (torchvision download into root).
    """
    cls = _cifar_classes()[0]
    root = _root(cfg)
    if _cifar_files_present(root, cls):
        return "pickles", root
    if _cifar10_tree_present(root):
        return "tree", root / "cifar10"
    if cfg.archive:
        archive = Path(cfg.archive).expanduser().absolute()
        if not archive.is_file():
            raise DatasetNotFound(
                f"CIFAR-10 not found under {root} (looked for cifar-10-batches-py/ and cifar10/train/) "
                f"and data.archive={archive} does not exist; {_HOW_TO_PROVIDE}"
            )
        extract_image_tree_archive(archive, root, "cifar10")
        return "tree", root / "cifar10"
    looked = "cifar-10-batches-py/ and cifar10/train/"
    if cfg.download:
        _download_torchvision(cls, root, "CIFAR-10", looked)
        return "pickles", root
    raise DatasetNotFound(
        f"CIFAR-10 not found under {root} (looked for {looked}); set data.root=... or DATA_ROOT, "
        "data.archive=<cifar10 ImageFolder .tar.gz>, or data.download=true with network"
    )


def _load_cifar10(cfg: DataConfig) -> Source:
    kind, where = _locate_cifar10(cfg)
    if kind == "pickles":
        return _torchvision_cifar_source("cifar10", _cifar_classes()[0], where)
    cache_dir = (_root(cfg) / CACHE_DIRNAME) if cfg.cache else None
    return image_tree_source(
        "cifar10",
        where,
        image_size=(32, 32),
        channels=3,
        resize=False,
        cache_dir=cache_dir,
        expected_classes=CIFAR10_CLASSES,
    )


def extract_image_tree_archive(archive: Path, root: Path, top: str) -> Path:
    """Extract the members under ``top/`` of a .tar(.gz) archive into ``root/top`` (once).

    Extraction goes to a temporary folder inside root first and is moved into place when
    complete, so an interrupted extraction never leaves a half tree that looks finished.
    """
    target = root / top
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ijr_extract-", dir=root))
    try:
        try:
            with tarfile.open(archive) as tar:
                members = [
                    m for m in tar.getmembers() if m.name == top or m.name.startswith(top + "/")
                ]
                if not members:
                    raise ValueError(f"archive {archive} has no '{top}/' folder at its top level")
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise ValueError(f"cannot extract {archive}: {_one_line(exc)}") from None
        extracted = tmp / top
        for split in ("train", "test"):
            if not (extracted / split).is_dir():
                raise ValueError(f"archive {archive} has no '{top}/{split}/' folder")
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.exists():  # another process may have finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- MNIST
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _locate_mnist(cfg: DataConfig) -> Path:
    from torchvision.datasets import MNIST

    root = _root(cfg)
    raw = root / "MNIST" / "raw"
    if all((raw / f).is_file() for f in _MNIST_FILES):
        return root
    looked = f"MNIST/raw/{_MNIST_FILES[0]} and the 3 other idx files"
    if cfg.download:
        _download_torchvision(MNIST, root, "MNIST", looked)
        return root
    raise DatasetNotFound(f"MNIST not found under {root} (looked for {looked}); {_HOW_TO_PROVIDE}")


def _load_mnist(cfg: DataConfig) -> Source:
    from torchvision.datasets import MNIST

    root = _locate_mnist(cfg)
    splits = []
    for train in (True, False):
        ds = MNIST(str(root), train=train, download=False)
        splits.append(_tensor_split(ds.data.unsqueeze(1).contiguous(), ds.targets))
    return Source(
        name="mnist",
        class_names=tuple(str(i) for i in range(10)),
        in_shape=(1, 28, 28),
        train=splits[0],
        test=splits[1],
        origin=f"torchvision files in {root / 'MNIST' / 'raw'}",
    )


# --------------------------------------------------------------------------- ImageFolder trees
def _natural_key(name: str) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_image_tree(split_dir: Path) -> tuple[list[str], list[Path], list[int]]:
    """Class names (sorted sub-folders) and the image files with their class index, classes
    interleaved round-robin, files in natural order within each class."""
    if not split_dir.is_dir():
        raise DatasetNotFound(
            f"image folder {split_dir} does not exist; expected {split_dir}/<class>/<image>"
        )
    class_dirs = sorted(
        (e for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")),
        key=lambda e: e.name,
    )
    if not class_dirs:
        raise ValueError(
            f"image folder {split_dir} has no class sub-folders; expected {split_dir}/<class>/<image>"
        )
    per_class: list[list[Path]] = []
    for entry in class_dirs:
        files = [
            Path(f.path)
            for f in os.scandir(entry.path)
            if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS)
        ]
        if not files:
            raise ValueError(
                f"class folder {entry.path} has no images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        per_class.append(sorted(files, key=lambda p: _natural_key(p.name)))
    files_out: list[Path] = []
    labels_out: list[int] = []
    for i in range(max(len(f) for f in per_class)):
        for label, files in enumerate(per_class):
            if i < len(files):
                files_out.append(files[i])
                labels_out.append(label)
    return [e.name for e in class_dirs], files_out, labels_out


def _fingerprint(files: Sequence[Path], base: Path, extra: str) -> str:
    h = hashlib.sha256(f"v{_CACHE_FORMAT_VERSION}|{extra}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def decode_images(
    files: Sequence[Path], image_size: tuple[int, int], channels: int, resize: bool
) -> torch.Tensor:
    """Decode image files with PIL into a (n, channels, H, W) uint8 tensor."""

    height, width = image_size
    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(files), height, width, channels), dtype=np.uint8)
    for i, path in enumerate(files):
        out[i] = _decode_one(path, height, width, channels, mode, resize)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _decode_one(path: Path, height: int, width: int, channels: int, mode: str, resize: bool):
    """One image as an (H, W, C) uint8 array; a file PIL cannot decode is one line naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return _fit_image(im.convert(mode), path, height, width, channels, resize)
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(
            f"cannot decode image {path} ({_one_line(exc)}); replace or remove the file"
        ) from None


def _fit_image(im, path: Path, height: int, width: int, channels: int, resize: bool):
    from PIL import Image

    if im.size != (width, height):
        if not resize:
            raise ValueError(
                f"image {path} is {im.size[0]}x{im.size[1]}, expected {width}x{height}; "
                "set data.image_size to resize all images"
            )
        im = im.resize((width, height), Image.BILINEAR)
    return np.asarray(im).reshape(height, width, channels)


class _ImageTreeSplit:
    """Lazily decoded split of an ImageFolder tree, with decoded uint8 tensors cached on disk.

    The cache file name carries a fingerprint of the decoded files (relative path, size, mtime)
    and of the decoding settings, so a changed tree is decoded again. A cache of the whole split
    serves every subset; a subset decoded on its own is cached under its own fingerprint.
    """

    def __init__(self, tag, base, files, image_size, channels, resize, cache_dir):
        self.tag, self.base, self.files = tag, base, files
        self.image_size, self.channels, self.resize = image_size, channels, resize
        self.cache_dir = cache_dir
        self.settings = f"{image_size[0]}x{image_size[1]}x{channels}|resize={resize}"

    def _cache_path(self, files: Sequence[Path]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = _fingerprint(files, self.base, self.settings)
        return self.cache_dir / f"{self.tag}-{len(files)}-{key}.pt"

    def _read_cache(self, path: Path | None, n: int) -> torch.Tensor | None:
        """The cached images, or None when there is no cache; a cache file that cannot be read
        (truncated by a kill or a full disk) or does not match is removed and rebuilt, with a
        warning naming it."""
        if path is None or not path.is_file():
            return None
        try:
            images = torch.load(path, map_location="cpu", weights_only=True)["images"]
            if images.dtype != torch.uint8 or images.shape[0] != n:
                raise ValueError(f"{images.dtype} images of shape {tuple(images.shape)}")
        except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt the same way
            warnings.warn(
                f"decoded-image cache {path} is unreadable ({_one_line(exc)[:160]}); "
                "removed, decoding the images again",
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
            return None
        return images

    def _write_cache(self, path: Path | None, images: torch.Tensor) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            torch.save({"images": images}, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            warnings.warn(
                f"could not write decoded-image cache {path}: {_one_line(exc)}", stacklevel=2
            )

    def __call__(self, indices: torch.Tensor) -> torch.Tensor:
        n_all = len(self.files)
        full_path = self._cache_path(self.files)
        full = self._read_cache(full_path, n_all)
        if full is not None:
            return full.index_select(0, indices)
        if indices.numel() == n_all and torch.equal(indices, torch.arange(n_all)):
            images = decode_images(self.files, self.image_size, self.channels, self.resize)
            self._write_cache(full_path, images)
            return images
        chosen = [self.files[i] for i in indices.tolist()]
        path = self._cache_path(chosen)
        images = self._read_cache(path, len(chosen))
        if images is None:
            images = decode_images(chosen, self.image_size, self.channels, self.resize)
            self._write_cache(path, images)
        return images


def image_tree_source(
    name: str,
    tree: Path,
    image_size: tuple[int, int] | None,
    channels: int | None,
    resize: bool,
    cache_dir: Path | None,
    expected_classes: Sequence[str] | None = None,
) -> Source:
    """A Source over ``tree/train/<class>/*`` and ``tree/test/<class>/*``.

    Class indices follow ``expected_classes`` if given (the set of class folders must match it),
    else the sorted train class folders. ``image_size``/``channels`` None: taken from the first
    training image (then every image must have that size).
    """
    train_classes, train_files, train_labels = list_image_tree(tree / "train")
    test_classes, test_files, test_labels = list_image_tree(tree / "test")
    if expected_classes is not None:
        if sorted(train_classes) != sorted(expected_classes):
            raise ValueError(
                f"{tree / 'train'} has class folders {train_classes}, expected {list(expected_classes)}"
            )
        class_names = tuple(expected_classes)
    else:
        class_names = tuple(train_classes)
    index_of = {c: i for i, c in enumerate(class_names)}
    unknown = sorted(set(test_classes) - set(index_of))
    if unknown:
        raise ValueError(f"{tree / 'test'} has class folders not in {tree / 'train'}: {unknown}")
    train_map = [index_of[c] for c in train_classes]
    test_map = [index_of[c] for c in test_classes]
    if image_size is None or channels is None:
        from PIL import Image

        with Image.open(train_files[0]) as im:
            first_size = (im.size[1], im.size[0])
            first_channels = 1 if im.mode in ("L", "LA", "1", "I", "I;16", "F") else 3
        image_size = image_size or first_size
        channels = channels or first_channels
    splits = []
    for split, files, labels, mapping in (
        ("train", train_files, train_labels, train_map),
        ("test", test_files, test_labels, test_map),
    ):
        loader = _ImageTreeSplit(
            f"{name}-{split}", tree, files, image_size, channels, resize, cache_dir
        )
        label_tensor = torch.as_tensor([mapping[lab] for lab in labels], dtype=torch.int64)
        splits.append(SourceSplit(labels=label_tensor, load_images=loader))
    return Source(
        name=name,
        class_names=class_names,
        in_shape=(channels, image_size[0], image_size[1]),
        train=splits[0],
        test=splits[1],
        origin=f"ImageFolder tree {tree}",
        listed_files=tuple(train_files) + tuple(test_files),
        listed_base=tree,
    )


def _require_imagefolder(root: Path) -> None:
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DatasetNotFound(
            f"ImageFolder dataset not found under {root} (looked for train/<class>/ and test/<class>/); "
            "set data.root to a folder with train/ and test/ sub-folders"
        )


def _load_imagefolder(cfg: DataConfig) -> Source:
    root = _root(cfg)
    _require_imagefolder(root)
    return image_tree_source(
        "imagefolder",
        root,
        image_size=cfg.image_size,
        channels=cfg.channels,
        resize=cfg.image_size is not None,
        cache_dir=(root / CACHE_DIRNAME) if cfg.cache else None,
    )


# --------------------------------------------------------------------------- digits
def _load_digits(cfg: DataConfig) -> Source:
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16 scaled to [0, 1], split 80/20
    stratified with a fixed seed (independent of the run seed): in every class a seeded
    permutation puts round(0.2 * n_class) examples into the test split. Within each split the
    examples keep their original order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    gen = generator("digits-split")
    is_test = torch.zeros(labels.shape[0], dtype=torch.bool)
    for c in range(10):
        members = torch.nonzero(labels == c).flatten()
        n_test = round(DIGITS_TEST_FRACTION * members.numel())
        chosen = members[torch.randperm(members.numel(), generator=gen)[:n_test]]
        is_test[chosen] = True
    train_idx = torch.nonzero(~is_test).flatten()
    test_idx = torch.nonzero(is_test).flatten()
    return Source(
        name="digits",
        class_names=tuple(str(i) for i in range(10)),
        in_shape=(1, 8, 8),
        train=_tensor_split(images[train_idx].contiguous(), labels[train_idx]),
        test=_tensor_split(images[test_idx].contiguous(), labels[test_idx]),
        origin="scikit-learn load_digits (bundled)",
    )


# --------------------------------------------------------------------------- synthetic
def _load_synthetic(cfg: DataConfig) -> Source:
    """Standard-normal inputs of shape ``cfg.shape`` labelled by a fixed random linear teacher:
    y = argmax_c <w_c, x>, w_c ~ N(0, I). Learnable (linearly separable) and fully determined
    by ``data_seed``: the teacher, training and test inputs use separate seeded generators."""
    d = cfg.shape[0] * cfg.shape[1] * cfg.shape[2]
    teacher = torch.randn(
        cfg.num_classes, d, generator=generator("synthetic", cfg.data_seed, "teacher")
    )

    def make(split: str, n: int) -> SourceSplit:
        x = torch.randn(n, d, generator=generator("synthetic", cfg.data_seed, split))
        y = (x @ teacher.T).argmax(dim=1)
        return _tensor_split(x.reshape(n, *cfg.shape), y)

    return Source(
        name="synthetic",
        class_names=tuple(f"class_{c}" for c in range(cfg.num_classes)),
        in_shape=cfg.shape,
        train=make("train", cfg.n_train),
        test=make("test", cfg.n_test),
        origin=f"synthetic (linear teacher, data_seed={cfg.data_seed})",
    )


# --------------------------------------------------------------------------- points
def points_xy(n_points: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper 002, App. C.3 (after its reference [42], Section 8): ``n_points`` points (x_i, y_i)
    of R^2 to regress, x_i evenly spaced in [0, 1] and y_i ~ U(-1, 1) drawn with
    ``G("points", data_seed)``. The positions and values of [42]'s 8 points are not given in
    paper 002; these are ours (docs/deviations_models.md). Returns x (n, 1), y (n, 1) float32."""
    x = torch.linspace(0.0, 1.0, n_points).unsqueeze(1)
    y = 2.0 * torch.rand(n_points, 1, generator=generator("points", data_seed)) - 1.0
    return x, y


def _load_points(cfg: DataConfig) -> Source:
    """The 2-D regression set of :func:`points_xy` as a one-"class" source with real targets; the
    test split is the same points (App. C.3 measures only the fit of the training points)."""
    x, y = points_xy(cfg.n_points, cfg.data_seed)
    zeros = torch.zeros(cfg.n_points, dtype=torch.int64)

    def split() -> SourceSplit:
        return SourceSplit(labels=zeros, load_images=lambda idx: x.index_select(0, idx), targets=y)

    return Source(
        name="points",
        class_names=("y",),
        in_shape=(1,),  # type: ignore[arg-type]  # one real input
        train=split(),
        test=split(),
        origin=f"points ({cfg.n_points} points x in [0, 1], y ~ U(-1, 1), data_seed={cfg.data_seed})",
    )
