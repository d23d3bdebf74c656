import gzip
import struct

import numpy as np
import pytest
import torch

from transferlab.data import format as fmt
from transferlab.data import sources, subsample, synth
from transferlab.data.format import DataError, Split
from transferlab.stages.data import make_subset


def write_idx(path, arr: np.ndarray, gz=False):
    """An IDX file exactly as the MNIST family ships it (big-endian header, then uint8 data)."""
    head = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = head + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def stage_tv(root, name, n_train=12, n_test=6, n_classes=10, gz=False, label_offset=0, seed=0):
    rng = np.random.default_rng(seed)
    files = sources.tv_raw_files(name, root)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % n_classes + label_offset).astype(np.uint8)
        write_idx(files[split][0], imgs, gz)
        write_idx(files[split][1], labels, gz)
        arrays[split] = (imgs, labels)
    return files, arrays


DATA = {"download": False, "verify_checksums": False}


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "kmnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_torchvision_loaders_read_format_true_files(tmp_path, name, gz):
    _, arrays = stage_tv(tmp_path, name, gz=gz)
    ds = sources.build(name, {"source": "torchvision", "name": name}, dict(DATA, root=str(tmp_path)))
    assert ds.num_classes == 10 and ds.shape == (1, 28, 28)
    for split, (imgs, labels) in arrays.items():
        assert torch.equal(ds.splits[split].images[:, 0], torch.from_numpy(imgs))
        assert torch.equal(ds.splits[split].labels, torch.from_numpy(labels).long())


def test_emnist_letters_transposed_and_relabelled(tmp_path):
    _, arrays = stage_tv(tmp_path, "emnist_letters", n_classes=26, label_offset=1)
    ds = sources.build("letters", {"source": "torchvision", "name": "emnist_letters"}, dict(DATA, root=str(tmp_path)))
    assert ds.classes == list("abcdefghijklmnopqrstuvwxyz")
    imgs, labels = arrays["train"]
    # EMNIST stores images transposed: the normalized copy is upright.
    assert torch.equal(ds.splits["train"].images[:, 0], torch.from_numpy(imgs).transpose(1, 2))
    assert torch.equal(ds.splits["train"].labels, torch.from_numpy(labels).long() - 1)


def test_emnist_balanced_has_47_classes(tmp_path):
    stage_tv(tmp_path, "emnist_balanced", n_train=47, n_test=47, n_classes=47)
    ds = sources.build("b", {"source": "torchvision", "name": "emnist_balanced"}, dict(DATA, root=str(tmp_path)))
    assert ds.num_classes == 47


def test_truncated_idx_is_a_clear_error(tmp_path):
    files, _ = stage_tv(tmp_path, "mnist")
    img = files["train"][0]
    img.write_bytes(img.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: header declares \[12, 28, 28\]"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))


def test_truncated_gzip_is_a_clear_error(tmp_path):
    files, _ = stage_tv(tmp_path, "mnist", gz=True)
    gz = files["test"][0].with_name(files["test"][0].name + ".gz")
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: cannot decompress"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))
    assert not files["test"][0].exists()  # no half-written decompressed file left behind


def test_label_count_mismatch(tmp_path):
    files, _ = stage_tv(tmp_path, "kmnist")
    write_idx(files["train"][1], np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="12 images but train-labels-idx1-ubyte has 5 labels"):
        sources.build("k", {"source": "torchvision", "name": "kmnist"}, dict(DATA, root=str(tmp_path)))


def test_partial_copy_rejected_when_verifying(tmp_path):
    stage_tv(tmp_path, "mnist")
    with pytest.raises(DataError, match="12 items, the canonical mnist train split has 60000"):
        sources.build(
            "mnist",
            {"source": "torchvision", "name": "mnist"},
            {"download": False, "verify_checksums": True, "root": str(tmp_path)},
        )


def test_missing_files_offline_names_paths(tmp_path):
    with pytest.raises(DataError, match=r"raw files missing under data.root=.*MNIST/raw/train-images-idx3-ubyte"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))


def test_not_an_idx_file(tmp_path):
    files, _ = stage_tv(tmp_path, "mnist")
    files["train"][0].write_bytes(b"<html>404</html>" * 10)
    with pytest.raises(DataError, match="not an IDX file"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))


def test_normalized_format_round_trip_and_corruption(tmp_path):
    ds = synth.render_dataset(
        "s", {"charset": "digits", "train_per_class": 3, "test_per_class": 2, "distortion": 1.0, "seed": 0}
    )
    fmt.save(ds, tmp_path / "s.pt")
    back = fmt.load(tmp_path / "s.pt")
    assert back.classes == ds.classes and torch.equal(back.splits["train"].images, ds.splits["train"].images)
    raw = (tmp_path / "s.pt").read_bytes()
    (tmp_path / "bad.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="bad.pt: cannot read data file"):
        fmt.load(tmp_path / "bad.pt")
    ds.splits["train"].labels[0] = 99
    with pytest.raises(DataError, match="labels span"):
        fmt.save(ds, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_synth_is_deterministic_and_balanced():
    cfg = {"charset": "letters", "train_per_class": 4, "test_per_class": 2, "distortion": 1.0, "seed": 7}
    a, b = synth.render_dataset("a", cfg), synth.render_dataset("b", cfg)
    assert torch.equal(a.splits["train"].images, b.splits["train"].images)
    assert a.num_classes == 26 and torch.bincount(a.splits["train"].labels).tolist() == [4] * 26
    c = synth.render_dataset("c", dict(cfg, seed=8))
    assert not torch.equal(a.splits["train"].images, c.splits["train"].images)
    assert not torch.equal(a.splits["train"].images[:52], a.splits["test"].images)


def test_sklearn_digits_upsampled_and_stratified():
    ds = sources.build("digits", {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0}, DATA)
    assert ds.shape == (1, 28, 28)
    assert len(ds.splits["train"]) + len(ds.splits["test"]) == 1797
    assert ds.splits["train"].images[:, :, :4].max() == 0  # MNIST-like empty border
    counts = torch.bincount(ds.splits["test"].labels)
    assert counts.min() >= 43 and counts.max() <= 47
    small = sources.build("d16", {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0, "image_size": 16}, DATA)
    assert small.shape == (1, 16, 16)  # an 11x11 glyph in the middle of the frame, same split
    x = small.splits["train"].images
    assert x[:, :, :2].max() == 0 and x[:, :, -3:].max() == 0 and x[:, :, 2:13].max() > 200
    assert torch.equal(small.splits["test"].labels, ds.splits["test"].labels)


def test_npz_and_folder_sources(tmp_path):
    """Both user formats come through pixel for pixel with their labels: an npz's arrays as
    [N, C, H, W]; a folder's images (ImageFolder's layout and order: classes sorted, then files)
    in grayscale as PIL converts them, labelled by their class folder; resized on request."""
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)  # [N, H, W, C]
    np.savez(
        tmp_path / "d.npz",
        x_train=x,
        y_train=np.arange(10) % 2,
        x_test=x[:4],
        y_test=np.arange(4) % 2,
        classes=np.array(["cat", "dog"]),
    )
    ds = sources.build("mine", {"source": "npz", "path": str(tmp_path / "d.npz")}, DATA)
    assert ds.classes == ["cat", "dog"]
    assert torch.equal(ds.splits["train"].images, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert ds.splits["train"].labels.tolist() == (np.arange(10) % 2).tolist()
    assert torch.equal(ds.splits["test"].images, torch.from_numpy(x[:4]).permute(0, 3, 1, 2))
    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / "f" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(x[i + (c == "b") * 2]).save(tmp_path / "f" / split / c / f"{i}.png")
    ds = sources.build("mine", {"source": "folder", "path": str(tmp_path / "f"), "image_size": 16}, DATA)
    grey = [np.asarray(Image.fromarray(x[i]).convert("L")) for i in range(4)]  # a/0, a/1, b/0, b/1
    assert ds.classes == ["a", "b"] and ds.splits["train"].labels.tolist() == [0, 0, 1, 1]
    assert torch.equal(ds.splits["train"].images, torch.from_numpy(np.stack(grey))[:, None])
    resized = sources.build("mine", {"source": "folder", "path": str(tmp_path / "f"), "image_size": 28}, DATA)
    assert resized.shape == (1, 28, 28) and resized.splits["test"].labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataError, match="missing arrays"):
        np.savez(tmp_path / "e.npz", x_train=x)
        sources.build("e", {"source": "npz", "path": str(tmp_path / "e.npz")}, DATA)


def test_real_sources_capped_per_class(tmp_path):
    """train_per_class / test_per_class keep a seeded k of every class of a real split (the
    `real` preset's CPU-sized MNIST and CIFAR-10); too few examples name the key."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    cfg = {"source": "npz", "path": str(tmp_path / "d.npz"), "train_per_class": 3, "test_per_class": 2, "seed": 1}
    ds = sources.build("capped", cfg, DATA)
    assert torch.bincount(ds.splits["train"].labels).tolist() == [3] * 4
    assert torch.bincount(ds.splits["test"].labels).tolist() == [2] * 4
    kept = ds.splits["train"].images.numpy().transpose(0, 2, 3, 1)
    assert all(any((k == row).all() for row in x) for k in kept)  # the real images, not copies or renders
    again = sources.build("capped", {**cfg, "seed": 2}, DATA)
    assert not torch.equal(again.splits["train"].images, ds.splits["train"].images)
    with pytest.raises(DataError, match="train_per_class"):
        sources.build("capped", {**cfg, "train_per_class": 11}, DATA)


def test_subsample_per_class_exact_and_seeded():
    labels = torch.arange(10).repeat(30)
    split = fmt.Split(torch.zeros(300, 1, 2, 2, dtype=torch.uint8), labels)
    idx = subsample.per_class(split, 7, seed=1)
    assert torch.bincount(labels[idx]).tolist() == [7] * 10
    assert len(set(idx.tolist())) == 70
    assert torch.equal(idx, subsample.per_class(split, 7, seed=1))
    assert not torch.equal(idx, subsample.per_class(split, 7, seed=2))
    with pytest.raises(DataError, match="class 0 has only 30"):
        subsample.per_class(split, 31, seed=0)


def test_subsample_fraction_and_subset_dataset():
    split = fmt.Split(torch.zeros(101, 1, 2, 2, dtype=torch.uint8), torch.arange(101) % 3)
    idx = subsample.fraction(split, 0.5, seed=0)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50
    ds = fmt.Dataset("d", "x", ["a", "b", "c"], {"train": split, "test": split})
    sub = make_subset(ds, per_class=None, fraction=0.5, seed=0)
    assert len(sub.splits["train"]) == 50 and len(sub.splits["test"]) == 101
    assert sub.meta["subset"]["indices"] == idx.tolist()


# ------------------------------------------------------------------ colour sets: CIFAR-10, STL-10, shapes
def _write_cifar10(root, n_train=6, n_test=4, seed=0):
    """The python-pickle release's layout and keys, with few images per batch file."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {}
    for name, n in [*[(f"data_batch_{i}", n_train) for i in range(1, 6)], ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": [b"x.png"] * n}, f)
        written[name] = (data, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": n_train, "num_vis": 3072}, f)
    return written


def test_cifar10_reads_the_pickle_release(tmp_path):
    written = _write_cifar10(tmp_path)
    data = {"root": str(tmp_path), "download": False, "verify_checksums": False}
    ds = sources.build("cifar10", {"source": "torchvision", "name": "cifar10"}, data)
    assert ds.classes[0] == "airplane" and ds.shape == (3, 32, 32)
    assert len(ds.splits["train"]) == 30 and len(ds.splits["test"]) == 4
    x, y = written["data_batch_2"]
    # Row-major 3072 = 3 planes of 32x32 (R, G, B), as the CIFAR page documents.
    assert torch.equal(ds.splits["train"].images[6], torch.from_numpy(x[0].reshape(3, 32, 32)))
    assert ds.splits["train"].labels[6:12].tolist() == y
    small = sources.build("cifar10", {"source": "torchvision", "name": "cifar10", "image_size": 16}, data)
    assert small.shape == (3, 16, 16)


def test_cifar10_integrity_checks(tmp_path):
    _write_cifar10(tmp_path)
    data = {"root": str(tmp_path), "download": False, "verify_checksums": True}
    with pytest.raises(DataError, match=r"data_batch_1: md5 .* canonical c99cafc1"):
        sources.build("cifar10", {"source": "torchvision", "name": "cifar10"}, data)
    (tmp_path / "cifar-10-batches-py/test_batch").unlink()
    with pytest.raises(DataError, match="test_batch"):
        sources.build("cifar10", {"source": "torchvision", "name": "cifar10"}, dict(data, verify_checksums=False))
    (tmp_path / "cifar-10-batches-py/test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 pickle"):
        sources.build("cifar10", {"source": "torchvision", "name": "cifar10"}, dict(data, verify_checksums=False))


def _write_stl10(root, n_train=5, n_test=3, n_unl=7, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unl)):
        img = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # [N, C, H, W]
        # The binary files store each channel column-major: write the transpose, C order.
        img.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        out[split] = img
        if split != "unlabeled":
            y = rng.integers(1, 11, n).astype(np.uint8)
            y.tofile(folder / f"{split}_y.bin")
            out[f"{split}_y"] = y
    (folder / "class_names.txt").write_text(
        "\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]) + "\n"
    )
    return out


def test_stl10_reads_the_binary_release_with_its_unlabeled_split(tmp_path):
    written = _write_stl10(tmp_path)
    data = {"root": str(tmp_path), "download": False, "verify_checksums": False}
    ds = sources.build("stl", {"source": "torchvision", "name": "stl10"}, data)
    assert ds.shape == (3, 96, 96) and ds.classes[2] == "car"
    assert torch.equal(ds.splits["train"].images, torch.from_numpy(written["train"]))
    assert ds.splits["train"].labels.tolist() == (written["train_y"].astype(int) - 1).tolist()
    assert len(ds.splits["unlabeled"]) == 7 and (ds.splits["unlabeled"].labels == -1).all()
    capped = sources.build("stl", {"source": "torchvision", "name": "stl10", "image_size": 32, "unlabeled": 4}, data)
    assert capped.shape == (3, 32, 32) and len(capped.splits["unlabeled"]) == 4
    with pytest.raises(DataError, match="train_X.bin: md5"):
        sources.build("stl", {"source": "torchvision", "name": "stl10"}, dict(data, verify_checksums=True))
    with open(tmp_path / "stl10_binary/test_X.bin", "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(DataError, match="not a whole number"):
        sources.build("stl", {"source": "torchvision", "name": "stl10"}, data)


def test_unlabeled_split_must_carry_minus_one(tmp_path):
    s = Split(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([-1, -1, -1]))
    ds = fmt.Dataset("u", "test", ["a"], {"train": Split(s.images, torch.zeros(3, dtype=torch.int64)), "unlabeled": s})
    fmt.save(ds, tmp_path / "u.pt")
    assert (fmt.load(tmp_path / "u.pt").splits["unlabeled"].labels == -1).all()
    ds.splits["unlabeled"] = Split(s.images, torch.tensor([-1, 0, -1]))
    with pytest.raises(DataError, match="'unlabeled' must have all labels -1"):
        fmt.save(ds, tmp_path / "v.pt")
    ds.splits["unlabeled"] = s
    ds.splits["train"] = Split(s.images, torch.tensor([0, -1, 0]))
    with pytest.raises(DataError, match="labels span"):
        fmt.save(ds, tmp_path / "w.pt")


def test_shapes_are_deterministic_balanced_colour_scenes():
    cfg = {"source": "shapes", "train_per_class": 6, "test_per_class": 2, "unlabeled_per_class": 3, "seed": 4}
    a = sources.build("shapes", cfg, {})
    b = sources.build("shapes", cfg, {})
    assert a.shape == (3, 32, 32) and a.num_classes == 10
    for k in ("train", "test", "unlabeled"):
        assert torch.equal(a.splits[k].images, b.splits[k].images)
    assert torch.bincount(a.splits["train"].labels).tolist() == [6] * 10
    assert (a.splits["unlabeled"].labels == -1).all() and len(a.splits["unlabeled"]) == 30
    x = a.splits["train"].images.float()
    assert (x[:, 0] - x[:, 1]).abs().mean() > 10  # colour, not grey
    # Classes differ in shape, not colour: per-class mean colours are alike.
    per_class = torch.stack([x[a.splits["train"].labels == c].mean((0, 2, 3)) for c in range(10)])  # [10, 3]
    assert (per_class.max(0).values - per_class.min(0).values).max() < 60
    other = sources.build("shapes", dict(cfg, seed=5), {})
    assert not torch.equal(other.splits["train"].images, a.splits["train"].images)
