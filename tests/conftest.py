import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from transferlab.workspace import copy_pipeline

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state, whatever ran before it: a model built or a
    tensor drawn without a seed of its own is the same in a test run alone and in the suite."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def tiny_params() -> dict:
    """The default params shrunk to seconds: one rendered data set, two targets, one seed."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["datasets"] = {
        "synth_digits": {
            "source": "synth",
            "charset": "digits",
            "train_per_class": 30,
            "test_per_class": 10,
            "distortion": 1.0,
            "seed": 0,
        }
    }
    p["pretext"].update(datasets=["synth_digits"], targets=["rotation", "overlay"], seeds=[0], labels_per_class=5)
    p["pretext"]["pretrain"].update(epochs=1, batch_size=64)
    p["pretext"]["finetune"].update(epochs=2, batch_size=25, frozen_layers=[0, 1])
    p["datasets"]["tiny_shapes"] = {
        "source": "shapes",
        "train_per_class": 12,
        "test_per_class": 5,
        "unlabeled_per_class": 12,
        "image_size": 16,
        "seed": 0,
    }
    p["semisup"].update(
        pretrain_datasets=["synth_digits"],
        finetune_datasets=["synth_digits"],
        samples_per_class=[2],
        augment=["none", "mixup", "collage"],
        seeds=[0],
    )
    p["semisup"]["pretrain"].update(epochs=2, batch_size=8)
    p["semisup"]["finetune"].update(train_per_class=10)
    p["recipe"].update(dataset="tiny_shapes", seeds=[0])
    p["recipe"]["lr_find"].update(steps=30)
    p["recipe"]["pretext"].update(epochs=2, batch_size=32)
    p["recipe"]["train"].update(epochs=3, batch_size=32, warmup_epochs=1, polyak_start_epoch=1, ema_span=5)
    # warm start: every experiment's stage family once (one seed, one value per grid), seconds each
    p["datasets"]["tiny_shapes16"] = {
        "source": "shapes",
        "train_per_class": 6,
        "test_per_class": 3,
        "unlabeled_per_class": 0,
        "image_size": 16,
        "seed": 0,
    }
    ws = p["warmstart"]
    ws.update(
        dataset="tiny_shapes16",
        seeds=[0],
        base_seeds=[0],
        optimizers=["adam"],
        pretrain_epochs=[1],
        gammas=[0.5],
        stages=[2],
        ratios=[0.5],
        stage_remedies=["shrink_perturb"],
        widths=[4],
        depths=[1],
        reset_modes=["nth"],
        reset_layers=[2],
        pretrain_lrs=[0.01],
        tune_lrs=[0.003],
        remedies=["shrink_perturb_head"],
    )
    ws["setup"].update(width=4, depth=1, batch_size=16, pretrain_epochs=2, train_epochs=2, eval_last=2)
    ws["until_fit"]["max_epochs"] = 2
    # transfer: the stand-in on tiny_shapes, both modes of one head; language: the real
    # stand-in corpus and NLI templates, a toy LM, two variants per encoder (the bundled MiniLM)
    tf = p["transfer"]
    tf.update(dataset="synth_digits", labels_per_class=[2], seeds=[0], heads=["linear"], modes=["frozen", "unfrozen"])
    tf["standin"].update(dataset="tiny_shapes", epochs=1, batch_size=32)
    # no stop rule here: with 2 validation images the best epoch may precede the unfreezing,
    # and the contract checked is that the extractor trains after the switch
    tf["finetune"].update(epochs=3, freeze_epochs=1, hidden=16, batch_size=10, patience=0)
    p["text"]["nli"].update(train=60, validation=15)
    n = p["nlp"]
    n["seeds"] = [0]
    n["tokenizer"]["max_vocab"] = 300
    n["lm"].update(emb=16, hidden=16, bptt=10, epochs=1, batch_size=50)
    n["nli_lm"].update(variants=["frozen", "random"], epochs=1, hidden=16, batch_size=16)
    n["bert"].update(variants=["feature", "scratch"], max_len=32)
    n["bert"]["scratch"].update(hidden_size=16, layers=1, heads=2, intermediate_size=32)
    for o in n["bert"]["optim"].values():
        o.update(epochs=1, batch_size=16, warmup_epochs=0)
    p["run"]["progress"] = False
    return p


@pytest.fixture
def params() -> dict:
    return copy.deepcopy(tiny_params())


def make_workspace(dest: Path, params: dict) -> Path:
    """A throw-away copy of the pipeline (and the sources its stages depend on) with the given
    params.yaml."""
    return copy_pipeline(dest, params)


@pytest.fixture
def workspace(tmp_path, params):
    return make_workspace(tmp_path, params)


def tool_env() -> dict[str, str]:
    """The environment stage commands run in: this venv's tools first, one thread (bitwise
    comparisons between runs need the same thread count)."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", OMP_NUM_THREADS="1")


def run(cmd: list[str], cwd: Path, check=True, umask: int | None = None, **kw) -> subprocess.CompletedProcess:
    """`cmd` in the tools' environment; `umask` sets the command's umask (as `umask 002` in its shell)."""
    env = tool_env()
    env.update(kw.pop("env", {}))
    if umask is not None:
        kw["preexec_fn"] = lambda: os.umask(umask)
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res
