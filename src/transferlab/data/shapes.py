"""An offline 32x32 colour stand-in for CIFAR-10/STL-10: ten classes of objects standing on
the ground in little outdoor scenes, rendered with PIL.

Every image: a vertical sky gradient over a ground band (half of them; the others a plain
backdrop lit from a random direction), an object of the class in a random colour, size,
position and small tilt, standing upright on a soft shadow, then downsampled with
anti-aliasing and given pixel noise. Objects have an up and a down, as in photos, so rotation
prediction is a meaningful pretext task, and on the plain backdrops only the object tells
which way is up; classes differ in shape only, never in colour. Deterministic per seed.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch

from .format import DataError, Dataset, Split


def _regular(n: int, r: float = 1.0, phase: float = math.pi / 2) -> list[tuple[float, float]]:
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _star() -> list[tuple[float, float]]:
    outer, inner = _regular(5, 1.0), _regular(5, 0.42, math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, inner) for p in pair]


# class -> polygons in a unit box (y up, the object's base at y = -1); "hole" polygons are
# drawn in the sky colour afterwards (the ring's inside).
SHAPES: dict[str, dict[str, list[list[tuple[float, float]]]]] = {
    "circle": {"fill": [_regular(40)]},
    "square": {"fill": [[(-0.8, -1), (0.8, -1), (0.8, 0.6), (-0.8, 0.6)]]},
    "triangle": {"fill": [[(-1, -1), (1, -1), (0, 0.9)]]},
    "diamond": {"fill": [[(0, -1), (0.7, 0), (0, 1), (-0.7, 0)]]},
    "star": {"fill": [_star()]},
    "cross": {
        "fill": [[(-0.25, -1), (0.25, -1), (0.25, 1), (-0.25, 1)], [(-0.9, 0.1), (0.9, 0.1), (0.9, 0.55), (-0.9, 0.55)]]
    },
    "ring": {"fill": [_regular(40)], "hole": [_regular(40, 0.55)]},
    "hexagon": {"fill": [_regular(6, 1.0, 0.0)]},
    "house": {"fill": [[(-0.75, -1), (0.75, -1), (0.75, 0.1), (-0.75, 0.1)], [(-1, 0.1), (1, 0.1), (0, 1)]]},
    "tree": {"fill": [[(-0.15, -1), (0.15, -1), (0.15, -0.4), (-0.15, -0.4)], [(-0.8, -0.4), (0.8, -0.4), (0, 1)]]},
}
CLASSES = list(SHAPES)
CANVAS = 64  # drawn at 64x64, downsampled to the requested size


def _rgb(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple[int, int, int]:
    h, s, v = rng.random(), rng.uniform(*sat), rng.uniform(*val)
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return int(255 * r), int(255 * g), int(255 * b)


def _place(poly, cx: float, base: float, size: float, tilt: float):
    """Unit polygon -> canvas pixels: scaled to `size`, tilted about its centre, base at `base`."""
    c, s = math.cos(tilt), math.sin(tilt)
    out = []
    for x, y in poly:
        rx, ry = c * x - s * y, s * x + c * y
        out.append((cx + rx * size / 2, base - (ry + 1) * size / 2))  # canvas y grows downwards
    return out


def render_one(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [3, size, size]."""
    from PIL import Image, ImageDraw, ImageFilter

    sky_top, sky_low = _rgb(rng, (0.1, 0.6), (0.5, 1.0)), _rgb(rng, (0.0, 0.5), (0.5, 1.0))
    ground = _rgb(rng, (0.3, 0.9), (0.2, 0.7))
    img = np.zeros((CANVAS, CANVAS, 3), np.float32)
    if rng.random() < 0.5:
        # Outdoors: sky gradient above a ground band.
        horizon = int(CANVAS * rng.uniform(0.55, 0.85))
        t = np.linspace(0, 1, horizon)[:, None]
        img[:horizon] = (1 - t)[..., None] * np.array(sky_top) + t[..., None] * np.array(sky_low)
        img[horizon:] = np.array(ground) * rng.uniform(0.8, 1.0)
    else:
        # A plain backdrop lit from a random direction: here only the object (and its shadow)
        # tells up from down, so rotation prediction has to look at the object.
        horizon = int(CANVAS * rng.uniform(0.55, 0.85))
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:CANVAS, 0:CANVAS] / CANVAS - 0.5
        t = np.clip(0.5 + np.cos(angle) * xx + np.sin(angle) * yy, 0, 1)[..., None]
        img[:] = (1 - t) * np.array(sky_top) + t * np.array(sky_low)
        ground = sky_low
    im = Image.fromarray(img.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    obj_size = rng.uniform(22, 40)
    cx = rng.uniform(obj_size / 2 + 2, CANVAS - obj_size / 2 - 2)
    base = horizon + rng.uniform(2, CANVAS - horizon - 2)
    tilt = math.radians(rng.uniform(-15, 15))
    shadow = tuple(int(c * 0.45) for c in ground)
    draw.ellipse([cx - obj_size * 0.55, base - 3, cx + obj_size * 0.55, base + 3], fill=shadow)
    colour = _rgb(rng, (0.5, 1.0), (0.5, 1.0))
    spec = SHAPES[CLASSES[label]]
    for poly in spec["fill"]:
        draw.polygon(_place(poly, cx, base, obj_size, tilt), fill=colour)
    for poly in spec.get("hole", []):
        draw.polygon(_place(poly, cx, base, obj_size, tilt), fill=sky_low)
    im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8))).resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(im, np.float32) + rng.normal(0, 6, (size, size, 3))
    return np.clip(arr, 0, 255).round().astype(np.uint8).transpose(2, 0, 1)


def render(per_class: int, size: int, seed: int, labelled: bool = True) -> Split:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    images = np.stack([render_one(int(c), rng, size) for c in labels])
    y = torch.from_numpy(labels.astype(np.int64)) if labelled else torch.full((len(labels),), -1, dtype=torch.int64)
    return Split(torch.from_numpy(images), y)


def render_dataset(name: str, cfg: dict) -> Dataset:
    size = cfg.get("image_size", 32)
    if size < 16:
        raise DataError(f"datasets.{name}.image_size: shapes need at least 16 pixels, got {size}")
    seed = cfg["seed"]
    # Disjoint random streams per split; the unlabeled split draws classes uniformly too.
    splits = {
        "train": render(cfg["train_per_class"], size, 3 * seed),
        "test": render(cfg["test_per_class"], size, 3 * seed + 1),
    }
    if cfg.get("unlabeled_per_class", 0):
        splits["unlabeled"] = render(cfg["unlabeled_per_class"], size, 3 * seed + 2, labelled=False)
    return Dataset(name, "shapes", list(CLASSES), splits, {})
