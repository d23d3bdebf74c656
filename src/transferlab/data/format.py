"""The normalized on-disk data set format that every stage after `prepare` reads.

One torch file per data set:
    {"format": FORMAT, "name": str, "source": str, "classes": [str, ...],
     "splits": {"train": {"images": uint8 [N, C, H, W], "labels": int64 [N]},
                "test":  {...},
                "unlabeled": {...}},   # optional; labels all -1 (e.g. STL-10's 100k images)
     "meta": {...}}
Loading re-checks every invariant, so a corrupt or hand-edited file fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io import InputError, atomic_torch_save

FORMAT = "transferlab.dataset/1"
UNLABELED = "unlabeled"  # the one split whose labels are all -1


class DataError(InputError):
    """A data file is missing, corrupt, truncated or inconsistent."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: torch.Tensor) -> Split:
        return Split(self.images[idx], self.labels[idx])


@dataclass
class Dataset:
    name: str
    source: str
    classes: list[str]
    splits: dict[str, Split]
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = next(iter(self.splits.values())).images.shape[1:]
        return int(c), int(h), int(w)

    def check(self, where: str = "") -> Dataset:
        where = where or self.name
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise DataError(f"{where}: class names must be non-empty and unique, got {self.classes!r}")
        shapes = set()
        for name, s in self.splits.items():
            if s.images.dtype != torch.uint8 or s.images.ndim != 4:
                raise DataError(
                    f"{where}: split {name!r} images must be uint8 [N, C, H, W], "
                    f"got {s.images.dtype} {tuple(s.images.shape)}"
                )
            if s.labels.dtype != torch.int64 or s.labels.ndim != 1:
                raise DataError(
                    f"{where}: split {name!r} labels must be int64 [N], got {s.labels.dtype} {tuple(s.labels.shape)}"
                )
            if s.images.shape[0] != s.labels.shape[0]:
                raise DataError(
                    f"{where}: split {name!r} has {s.images.shape[0]} images but {s.labels.shape[0]} labels"
                )
            if len(s) == 0:
                raise DataError(f"{where}: split {name!r} is empty")
            lo, hi = int(s.labels.min()), int(s.labels.max())
            if name == UNLABELED:
                if lo != -1 or hi != -1:
                    raise DataError(f"{where}: split {name!r} must have all labels -1, got [{lo}, {hi}]")
            elif lo < 0 or hi >= len(self.classes):
                raise DataError(
                    f"{where}: split {name!r} labels span [{lo}, {hi}] but there are {len(self.classes)} classes"
                )
            shapes.add(tuple(s.images.shape[1:]))
        if len(shapes) > 1:
            raise DataError(f"{where}: splits disagree on image shape: {sorted(shapes)}")
        return self

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "source": self.source,
            "classes": list(self.classes),
            "splits": {
                k: {"images": v.images.contiguous(), "labels": v.labels.contiguous()} for k, v in self.splits.items()
            },
            "meta": self.meta,
        }


def save(ds: Dataset, path: str | Path) -> None:
    ds.check(str(path))
    atomic_torch_save(ds.to_dict(), path)


def load(path: str | Path, split: str | None = None) -> Dataset:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found (run the prepare stage first)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/corrupt zips
        raise DataError(
            f"{path}: cannot read data file ({type(e).__name__}: {e}); "
            "it is corrupt or truncated: delete it and rerun its prepare stage"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{path}: not a {FORMAT} file (format={found})")
    splits = {k: Split(v["images"], v["labels"]) for k, v in raw["splits"].items()}
    if split is not None and split not in splits:
        raise DataError(f"{path}: no split {split!r} (has {sorted(splits)})")
    ds = Dataset(raw["name"], raw["source"], list(raw["classes"]), splits, raw.get("meta", {}))
    return ds.check(str(path))
