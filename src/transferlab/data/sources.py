"""Data sources: name -> loader producing a normalized Dataset. Registry, not a ladder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from . import idx
from .format import DataError, Dataset, Split
from .provenance import REAL_SOURCES


# ------------------------------------------------------------------ torchvision (MNIST family)
# Canonical item counts (train, test); md5 of the *uncompressed* raw files where known.
# torchvision itself checks the .gz md5s when it downloads; these catch a bad pre-staged copy.
class TvSet(TypedDict):
    cls: str  # the torchvision.datasets class
    split: str | None  # EMNIST's split
    counts: tuple[int, int]  # (train, test) items
    md5: dict[str, str]  # raw file -> md5 of its uncompressed bytes


TV_SETS: dict[str, TvSet] = {
    "mnist": TvSet(
        cls="MNIST",
        split=None,
        counts=(60000, 10000),
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion_mnist": TvSet(cls="FashionMNIST", split=None, counts=(60000, 10000), md5={}),
    "kmnist": TvSet(cls="KMNIST", split=None, counts=(60000, 10000), md5={}),
    # EMNIST stores images transposed; letters labels run 1..26 (0 is an unused "N/A").
    "emnist_letters": TvSet(cls="EMNIST", split="letters", counts=(124800, 20800), md5={}),
    "emnist_balanced": TvSet(cls="EMNIST", split="balanced", counts=(112800, 18800), md5={}),
}


def tv_raw_files(name: str, root: str | Path) -> dict[str, tuple[Path, Path]]:
    """split -> (images file, labels file) exactly where torchvision looks for them."""
    spec = TV_SETS[name]
    raw = Path(root) / spec["cls"] / "raw"
    if spec["split"]:
        stem = {s: f"emnist-{spec['split']}-{s}" for s in ("train", "test")}
    else:
        stem = {"train": "train", "test": "t10k"}
    return {s: (raw / f"{p}-images-idx3-ubyte", raw / f"{p}-labels-idx1-ubyte") for s, p in stem.items()}


def load_torchvision(name: str, cfg: dict, data: dict) -> Dataset:
    import torchvision.datasets as tvd

    spec = TV_SETS[name]
    cls = getattr(tvd, spec["cls"])
    kwargs = {"split": spec["split"]} if spec["split"] else {}
    root = Path(data["root"])
    files = tv_raw_files(name, root)
    for pair in files.values():
        for f in pair:
            idx.gunzip_if_needed(f)
    missing = [str(f) for pair in files.values() for f in pair if not f.exists()]
    if missing and data["download"]:
        cls(str(root), train=True, download=True, **kwargs)  # torchvision checks archive md5s
        missing = [str(f) for pair in files.values() for f in pair if not f.exists()]
    if missing:
        raise DataError(
            f"{name}: raw files missing under data.root={root}: {', '.join(missing)}. "
            "Set data.download: true on a machine with internet, or pre-stage the files "
            "(.gz or uncompressed) in torchvision's layout."
        )
    splits = {}
    for (split, (img_f, lbl_f)), expected in zip(files.items(), spec["counts"]):
        n_img = idx.check(img_f, 3)
        n_lbl = idx.check(lbl_f, 1)
        if n_img != n_lbl:
            raise DataError(f"{img_f}: {n_img} images but {lbl_f.name} has {n_lbl} labels")
        if data["verify_checksums"]:
            if n_img != expected:
                raise DataError(
                    f"{img_f}: {n_img} items, the canonical {name} {split} split has {expected}; "
                    "set data.verify_checksums: false to use a partial copy deliberately"
                )
            for f in (img_f, lbl_f):
                want = spec["md5"].get(f.name)
                if want and idx.md5(f) != want:
                    raise DataError(f"{f}: md5 {idx.md5(f)} != canonical {want}: the file is corrupt")
        tv = cls(str(root), train=(split == "train"), download=False, **kwargs)
        images = tv.data.to(torch.uint8).unsqueeze(1)  # [N, 1, 28, 28]
        labels = tv.targets.to(torch.int64)
        if spec["cls"] == "EMNIST":
            images = images.transpose(2, 3).contiguous()
        splits[split] = Split(images, labels)
    classes = list(tv.classes)
    if spec["split"] == "letters":
        classes = classes[1:]
        for s in splits.values():
            s.labels -= 1
    return Dataset(name, "torchvision", classes, splits, {"root": str(root)})


# ------------------------------------------------------------------ torchvision (colour: CIFAR-10, STL-10)
def _md5_check(files: list[tuple[Path, str]], name: str) -> None:
    for f, want in files:
        got = idx.md5(f)
        if got != want:
            raise DataError(
                f"{f}: md5 {got} != canonical {want} (torchvision's list for {name}): "
                "the file is corrupt or not the official release; delete it and re-download, "
                "or set data.verify_checksums: false to use it deliberately"
            )


def _resize(images: torch.Tensor, size: int | None, chunk: int = 4096) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C, size, size] with anti-aliasing, in chunks (STL-10's
    unlabeled split is 2.8 GB at full size)."""
    if size is None or images.shape[-1] == size:
        return images
    from torchvision.transforms.v2.functional import resize

    return torch.cat([resize(c, [size, size], antialias=True) for c in images.split(chunk)])


def load_cifar10(name: str, cfg: dict, data: dict) -> Dataset:
    """The python-pickle release (cifar-10-batches-py/data_batch_1..5, test_batch,
    batches.meta), read directly so that a pre-staged or test-written copy is checked by
    torchvision's md5 list only when data.verify_checksums asks for it."""
    import pickle

    import torchvision.datasets as tvd

    root = Path(data["root"])
    folder = root / tvd.CIFAR10.base_folder
    lists = {"train": tvd.CIFAR10.train_list, "test": tvd.CIFAR10.test_list}
    meta = tvd.CIFAR10.meta
    wanted = [folder / f for lst in lists.values() for f, _ in lst] + [folder / meta["filename"]]
    if any(not f.exists() for f in wanted) and data["download"]:
        tvd.CIFAR10(str(root), train=True, download=True)  # fetches and md5-checks the archive
    missing = [str(f) for f in wanted if not f.exists()]
    if missing:
        raise DataError(
            f"{name}: raw files missing under data.root={root}: {', '.join(missing)}. "
            "Set data.download: true on a machine with internet, or pre-stage "
            f"{tvd.CIFAR10.filename} extracted there."
        )
    if data["verify_checksums"]:
        _md5_check(
            [(folder / f, m) for lst in lists.values() for f, m in lst] + [(folder / meta["filename"], meta["md5"])],
            name,
        )

    def unpickle(f: Path) -> dict:
        try:
            with open(f, "rb") as fh:
                return pickle.load(fh, encoding="latin1")
        except Exception as e:
            raise DataError(f"{f}: not a CIFAR-10 pickle ({type(e).__name__}: {e})") from e

    splits = {}
    for split, lst in lists.items():
        xs, ys = [], []
        for f, _ in lst:
            d = unpickle(folder / f)
            if "data" not in d or "labels" not in d:
                raise DataError(f"{folder / f}: expected keys 'data' and 'labels', got {sorted(d)}")
            x = np.asarray(d["data"], dtype=np.uint8)
            if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or x.shape[0] != len(d["labels"]):
                raise DataError(
                    f"{folder / f}: data must be uint8 [N, 3072] with N labels, "
                    f"got {x.shape} and {len(d['labels'])} labels"
                )
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.extend(d["labels"])
        splits[split] = Split(
            _resize(torch.from_numpy(np.concatenate(xs)), cfg.get("image_size")), torch.tensor(ys, dtype=torch.int64)
        )
    classes = list(unpickle(folder / meta["filename"])[meta["key"]])
    if data["verify_checksums"]:
        for split, expected in zip(("train", "test"), (50000, 10000)):
            if len(splits[split]) != expected:
                raise DataError(f"{name}: {split} has {len(splits[split])} images, CIFAR-10 has {expected}")
    return Dataset(name, "torchvision", classes, splits, {"root": str(root)})


def _stl_images(f: Path, limit: int | None = None) -> np.ndarray:
    """STL-10's X files: uint8, each image 3x96x96 stored column-major -> [N, 3, 96, 96]."""
    per = 3 * 96 * 96
    size = f.stat().st_size
    if size % per:
        raise DataError(f"{f}: {size} bytes is not a whole number of 3x96x96 images")
    n = size // per if limit is None else min(limit, size // per)
    x = np.memmap(f, dtype=np.uint8, mode="r", shape=(n, 3, 96, 96))
    return x.transpose(0, 1, 3, 2)


def load_stl10(name: str, cfg: dict, data: dict) -> Dataset:
    """stl10_binary/{train,test}_{X,y}.bin, unlabeled_X.bin, class_names.txt. Images are
    resized to image_size (default 96); `unlabeled` caps how many unlabeled images are kept
    (default all 100,000) for the rotation pretext task."""
    import torchvision.datasets as tvd

    root = Path(data["root"])
    folder = root / tvd.STL10.base_folder
    files = {f: m for f, m in tvd.STL10.train_list + tvd.STL10.test_list}
    wanted = [folder / f for f in files] + [folder / tvd.STL10.class_names_file]
    if any(not f.exists() for f in wanted) and data["download"]:
        tvd.STL10(str(root), split="train", download=True)
    missing = [str(f) for f in wanted if not f.exists()]
    if missing:
        raise DataError(
            f"{name}: raw files missing under data.root={root}: {', '.join(missing)}. "
            f"Set data.download: true, or pre-stage {tvd.STL10.filename} extracted there."
        )
    if data["verify_checksums"]:
        _md5_check([(folder / f, m) for f, m in files.items()], name)
    size = cfg.get("image_size", 96)
    splits = {}
    for split in ("train", "test"):
        x = _stl_images(folder / f"{split}_X.bin")
        y = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1  # 1..10 -> 0..9
        if len(y) != len(x):
            raise DataError(f"{folder / f'{split}_y.bin'}: {len(y)} labels for {len(x)} images")
        splits[split] = Split(_resize(torch.from_numpy(np.ascontiguousarray(x)), size), torch.from_numpy(y))
    x = _stl_images(folder / "unlabeled_X.bin", cfg.get("unlabeled"))
    chunks = [_resize(torch.from_numpy(np.ascontiguousarray(x[i : i + 4096])), size) for i in range(0, len(x), 4096)]
    splits["unlabeled"] = Split(torch.cat(chunks), torch.full((len(x),), -1, dtype=torch.int64))
    classes = (folder / tvd.STL10.class_names_file).read_text().split()
    return Dataset(name, "torchvision", classes, splits, {"root": str(root)})


COLOR_SETS = {"cifar10": load_cifar10, "stl10": load_stl10}


# ------------------------------------------------------------------ scikit-learn digits
def load_sklearn_digits(name: str, cfg: dict, data: dict) -> Dataset:
    """The 1,797 real 8x8 handwritten digits, upsampled to a 20x20 glyph in a 28x28 frame like
    MNIST (or the same proportions in an `image_size` frame: 11x11 in 16x16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [1797, 1, 8, 8] in [0, 1]
    size = cfg.get("image_size", 28)
    glyph = round(size * 20 / 28)
    lo, hi = (size - glyph) // 2, size - glyph - (size - glyph) // 2
    x = F.interpolate(x, size=(glyph, glyph), mode="bilinear", align_corners=False)
    x = F.pad(x, (lo, hi, lo, hi))  # [1797, 1, size, size]
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.tensor(d.target, dtype=torch.int64)
    tr, te = train_test_split(
        np.arange(len(labels)), test_size=cfg["test_fraction"], random_state=cfg["seed"], stratify=d.target
    )
    tr, te = torch.as_tensor(np.sort(tr)), torch.as_tensor(np.sort(te))
    splits = {"train": Split(images[tr], labels[tr]), "test": Split(images[te], labels[te])}
    return Dataset(name, "sklearn_digits", [str(i) for i in range(10)], splits, {})


# ------------------------------------------------------------------ user data: folder / npz
def _to_nchw_uint8(x: np.ndarray, where: str) -> torch.Tensor:
    if x.dtype != np.uint8:
        raise DataError(f"{where}: images must be uint8, got {x.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.ndim == 3:  # [N, H, W]
        return t.unsqueeze(1)
    if t.ndim == 4 and t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):  # [N, H, W, C]
        return t.permute(0, 3, 1, 2).contiguous()
    if t.ndim == 4:
        return t
    raise DataError(f"{where}: images must be [N,H,W], [N,H,W,C] or [N,C,H,W], got {tuple(t.shape)}")


def load_npz(name: str, cfg: dict, data: dict) -> Dataset:
    path = Path(cfg["path"])
    if not path.is_file():
        raise DataError(f"datasets.{name}.path: {path} not found")
    try:
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"{path}: cannot read .npz ({type(e).__name__}: {e})") from e
    need = ["x_train", "y_train", "x_test", "y_test"]
    absent = [k for k in need if k not in arrays]
    if absent:
        raise DataError(f"{path}: missing arrays {absent}; expected {need} (+ optional 'classes')")
    splits = {
        s: Split(_to_nchw_uint8(arrays[f"x_{s}"], f"{path}:x_{s}"), torch.from_numpy(arrays[f"y_{s}"].astype(np.int64)))
        for s in ("train", "test")
    }
    n = int(max(int(s.labels.max()) for s in splits.values())) + 1
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(n)]
    return Dataset(name, "npz", classes, splits, {"path": str(path)})


def load_folder(name: str, cfg: dict, data: dict) -> Dataset:
    """<path>/{train,test}/<class>/<image>: torchvision's ImageFolder layout, one per split."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.v2.functional import pil_to_tensor, resize

    root = Path(cfg["path"])
    size = cfg.get("image_size", 28)
    mode = "L" if cfg.get("grayscale", True) else "RGB"
    splits: dict[str, Split] = {}
    classes: list[str] | None = None
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise DataError(f"datasets.{name}.path: expected {root / split}/<class>/<image> folders")
        folder = ImageFolder(str(root / split), loader=lambda p: p)
        if classes is not None and folder.classes != classes:
            raise DataError(f"{root}: train and test class folders differ: {classes} vs {folder.classes}")
        classes = folder.classes
        imgs = []
        for p, _ in folder.samples:
            try:
                with Image.open(p) as im:
                    img = pil_to_tensor(im.convert(mode))  # uint8 [C, H, W]
            except (OSError, UnidentifiedImageError) as e:
                raise DataError(f"{p}: cannot decode image ({e})") from e
            imgs.append(resize(img, [size, size], antialias=True))
        splits[split] = Split(torch.stack(imgs), torch.tensor(folder.targets, dtype=torch.int64))
    assert classes is not None  # (the loop above read both splits' class folders)
    return Dataset(name, "folder", classes, splits, {"path": str(root)})


def _load_shapes(name: str, cfg: dict, data: dict) -> Dataset:
    from .shapes import render_dataset

    return render_dataset(name, cfg)


def _load_synth(name: str, cfg: dict, data: dict) -> Dataset:
    from .synth import render_dataset

    return render_dataset(name, cfg)


def _load_tv(name: str, cfg: dict, data: dict) -> Dataset:
    loader = COLOR_SETS.get(cfg["name"], lambda n, c, d: load_torchvision(n, c, d))
    ds = loader(cfg["name"], cfg, data)
    ds.name = name
    return ds


SOURCES: dict[str, Callable[[str, dict, dict], Dataset]] = {
    "torchvision": _load_tv,
    "sklearn_digits": load_sklearn_digits,
    "synth": _load_synth,
    "shapes": _load_shapes,
    "npz": load_npz,
    "folder": load_folder,
}


def build(name: str, cfg: dict, data: dict) -> Dataset:
    """Materialize data set `name` from its params entry `cfg` (data = the params `data` section)."""
    ds = capped(SOURCES[cfg["source"]](name, cfg, data), cfg)
    ds.meta["params"] = cfg
    return ds.check(name)


def capped(ds: Dataset, cfg: dict) -> Dataset:
    """Real data at CPU scale: `train_per_class`/`test_per_class` keep a seeded k examples of
    every class of that split (cfg's `seed`, 0 if unset), in their original order."""
    from .subsample import per_class

    for split in ("train", "test"):
        k = cfg.get(f"{split}_per_class")
        if k and cfg["source"] in REAL_SOURCES:
            try:
                ds.splits[split] = ds.splits[split].subset(per_class(ds.splits[split], k, cfg.get("seed", 0)))
            except DataError as e:
                raise DataError(f"datasets.{ds.name}.{split}_per_class: {e}") from e
    return ds
