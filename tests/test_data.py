import gzip
import struct

import numpy as np
import pytest
import torch

from transferlab.data import format as fmt
from transferlab.data import sources, subsample, synth
from transferlab.data.format import DataError
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
        sources.build("mnist", {"source": "torchvision", "name": "mnist"},
                      {"download": False, "verify_checksums": True, "root": str(tmp_path)})


def test_missing_files_offline_names_paths(tmp_path):
    with pytest.raises(DataError, match=r"raw files missing under data.root=.*MNIST/raw/train-images-idx3-ubyte"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))


def test_not_an_idx_file(tmp_path):
    files, _ = stage_tv(tmp_path, "mnist")
    files["train"][0].write_bytes(b"<html>404</html>" * 10)
    with pytest.raises(DataError, match="not an IDX file"):
        sources.build("mnist", {"source": "torchvision", "name": "mnist"}, dict(DATA, root=str(tmp_path)))


def test_normalized_format_round_trip_and_corruption(tmp_path):
    ds = synth.render_dataset("s", {"charset": "digits", "train_per_class": 3, "test_per_class": 2,
                                    "distortion": 1.0, "seed": 0})
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


def test_npz_and_folder_sources(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(10) % 2, x_test=x[:4], y_test=np.arange(4) % 2,
             classes=np.array(["cat", "dog"]))
    ds = sources.build("mine", {"source": "npz", "path": str(tmp_path / "d.npz")}, DATA)
    assert ds.classes == ["cat", "dog"] and ds.shape == (3, 16, 16)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / "f" / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(x[i]).save(tmp_path / "f" / split / c / f"{i}.png")
    ds = sources.build("mine", {"source": "folder", "path": str(tmp_path / "f"), "image_size": 28}, DATA)
    assert ds.classes == ["a", "b"] and ds.shape == (1, 28, 28) and len(ds.splits["train"]) == 4
    with pytest.raises(DataError, match="missing arrays"):
        np.savez(tmp_path / "e.npz", x_train=x)
        sources.build("e", {"source": "npz", "path": str(tmp_path / "e.npz")}, DATA)


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
