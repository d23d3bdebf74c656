"""Offline MNIST/EMNIST-style digits and letters rendered from fonts that matplotlib ships.

Each glyph is drawn once per font (MNIST's recipe: fit a 20x20 box keeping aspect ratio,
centre of mass at the centre of a 28x28 frame), then every sample gets its own random
stroke width, affine transform, smooth elastic displacement and pixel noise, all drawn
from one seeded torch.Generator: the same params give bit-identical data.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .format import DataError, Dataset, Split

# 21 text fonts in matplotlib's mpl-data (symbol-only and display fonts are left out).
FONTS = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
]

# charset -> (class names, the glyph variants drawn for each class).
# EMNIST letters merges upper and lower case into one class; so do we.
CHARSETS = {
    "digits": (list(string.digits), [list(string.digits)]),
    "letters": (list(string.ascii_lowercase), [list(string.ascii_lowercase), list(string.ascii_uppercase)]),
}


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _center_glyph(img: np.ndarray) -> np.ndarray:
    """Crop to ink, fit a 20x20 box keeping aspect, place the centre of mass at (14, 14)."""
    from PIL import Image

    ys, xs = np.nonzero(img > 0)
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float32)
    small = np.clip(small, 0, 255)
    canvas = np.zeros((28, 28), np.float32)
    mass = small.sum()
    cy = (small.sum(1) * np.arange(nh)).sum() / mass
    cx = (small.sum(0) * np.arange(nw)).sum() / mass
    top = int(np.clip(round(14 - cy), 0, 28 - nh))
    left = int(np.clip(round(14 - cx), 0, 28 - nw))
    canvas[top : top + nh, left : left + nw] = small
    return canvas


@lru_cache(maxsize=4)
def glyph_bank(charset: str) -> torch.Tensor:
    """float [fonts, variants, classes, 28, 28] in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    _, variants = CHARSETS[charset]
    files = [font_dir() / f for f in FONTS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"synth: bundled fonts not found: {missing} (is matplotlib installed?)")
    bank = np.zeros((len(files), len(variants), len(variants[0]), 28, 28), np.float32)
    for i, f in enumerate(files):
        font = ImageFont.truetype(str(f), 64)
        for v, chars in enumerate(variants):
            for c, ch in enumerate(chars):
                img = Image.new("L", (128, 128), 0)
                ImageDraw.Draw(img).text((32, 16), ch, fill=255, font=font)
                arr = np.asarray(img)
                if arr.max() == 0:
                    raise DataError(f"synth: font {f.name} renders {ch!r} blank")
                bank[i, v, c] = _center_glyph(arr)
    return torch.from_numpy(bank / 255.0)


def distort(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Random per-sample stroke width, affine, elastic warp and noise.  x: float [N, 1, 28, 28]."""
    n = x.shape[0]
    d = float(strength)

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=gen)

    # Stroke width: erode (-1), keep (0) or dilate (+1) with a 3x3 window; dilation then a
    # 2x2 blur keeps bold strokes from becoming blocks.
    width = torch.randint(-1, 2, (n,), generator=gen) if d > 0 else torch.zeros(n, dtype=torch.long)
    dil = F.max_pool2d(x, 3, 1, 1)
    ero = -F.max_pool2d(-x, 3, 1, 1)
    w = width.view(n, 1, 1, 1)
    x = torch.where(w > 0, 0.5 * (x + dil), torch.where(w < 0, 0.5 * (x + ero), x))

    # Affine: rotation, shear, anisotropic scale, translation (in normalised [-1, 1] coords).
    rot = torch.deg2rad(u(-12 * d, 12 * d))
    shear = u(-0.25 * d, 0.25 * d)
    sx, sy = u(1 - 0.12 * d, 1 + 0.08 * d), u(1 - 0.12 * d, 1 + 0.08 * d)
    tx, ty = u(-0.1 * d, 0.1 * d), u(-0.1 * d, 0.1 * d)
    cos, sin = torch.cos(rot), torch.sin(rot)
    theta = torch.stack(
        [
            torch.stack([cos * sx, -sin * sy + shear, tx], -1),
            torch.stack([sin * sx, cos * sy, ty], -1),
        ],
        1,
    )  # [N, 2, 3], maps output coords to input coords
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # [N, 28, 28, 2]
    # Elastic: a coarse 5x5 random field upsampled smoothly (Simard et al.'s idea, cheap form).
    field = torch.randn(n, 2, 5, 5, generator=gen) * 0.04 * d
    field = F.interpolate(field, size=x.shape[-2:], mode="bicubic", align_corners=False)
    grid = grid + field.permute(0, 2, 3, 1)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = x + torch.randn(x.shape, generator=gen) * 0.04 * d
    return x.clamp(0, 1)


def render(charset: str, per_class: int, strength: float, seed: int) -> Split:
    """per_class samples of each class, shuffled. images uint8 [N, 1, 28, 28], labels int64 [N]."""
    if charset not in CHARSETS:
        raise DataError(f"synth: unknown charset {charset!r}; known: {sorted(CHARSETS)}")
    bank = glyph_bank(charset)
    n_fonts, n_var, n_cls = bank.shape[:3]
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_cls).repeat(per_class)
    labels = labels[torch.randperm(len(labels), generator=gen)]
    font = torch.randint(0, n_fonts, labels.shape, generator=gen)
    var = torch.randint(0, n_var, labels.shape, generator=gen)
    x = bank[font, var, labels].unsqueeze(1)  # [N, 1, 28, 28]
    chunks = [distort(c, strength, gen) for c in x.split(4096)]
    images = (torch.cat(chunks) * 255).round().to(torch.uint8)
    return Split(images, labels.to(torch.int64))


def render_dataset(name: str, cfg: dict) -> Dataset:
    classes, _ = CHARSETS[cfg["charset"]]
    # Train and test draw from disjoint random streams of the same seed.
    splits = {
        "train": render(cfg["charset"], cfg["train_per_class"], cfg["distortion"], 2 * cfg["seed"]),
        "test": render(cfg["charset"], cfg["test_per_class"], cfg["distortion"], 2 * cfg["seed"] + 1),
    }
    return Dataset(name, "synth", list(classes), splits, {"fonts": FONTS})
