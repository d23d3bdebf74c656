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
# One thread per test process (unless the caller chose): the workers and the builds beside them
# (tests/shared.py) share the cores, and OpenMP threads spin while they wait, so two workers of
# two threads each beside the builds ran the in-process training tests several times slower.
# The jobs the tests start run one thread each anyway (tool_env).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Services a run must have, comma-separated (`slurm`), or `all`: then a test that would skip for
# want of one fails instead (.ci/run sets `all`: a CI that lost its cluster is red, not green
# with two skips in the summary).
REQUIRE = "TRANSFERLAB_REQUIRE"


def required(service: str) -> bool:
    names = {n.strip() for n in os.environ.get(REQUIRE, "").split(",")}
    return service in names or "all" in names


def require(service: str, missing: str) -> None:
    """Skip the test for want of `service` (`missing` says what is missing), or fail it where
    $TRANSFERLAB_REQUIRE names the service."""
    if required(service):
        pytest.fail(f"{missing}; ${REQUIRE} requires {service!r} here", pytrace=False)
    pytest.skip(missing)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """With $TRANSFERLAB_REQUIRE=all, no test may skip, whatever its reason."""
    report = yield
    if report.skipped and required("all") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped, but ${REQUIRE}=all allows no skip: {reason}"
    return report


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


# ------------------------------------------------------------------ workspaces the tests share
# tests/shared.py builds them once per run, for every worker; started when the tests are collected.


def shared_root(config) -> Path:
    """The folder this pytest run's workers share: the run's base temporary folder (a worker's
    own is one level down)."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def pytest_collection_finish(session):
    import shared

    if session.config.option.collectonly:
        return

    wanted = {
        name
        for item in session.items
        for name in shared.BUILDS
        if {name, f"{name}_copy"} & set(getattr(item, "fixturenames", ()))
    }
    for name in sorted(wanted):
        shared.start(shared_root(session.config), name)


def pytest_sessionfinish(session):
    """Once every worker is done (here: the run's main process), end a build nobody waited for
    (its tests stopped early, or the run was interrupted)."""
    if not hasattr(session.config, "workerinput"):
        import shared

        shared.stop_builds(shared_root(session.config))
        shared.stop_cluster(shared_root(session.config))


def _shared_fixture(name: str, alone: bool = True):
    @pytest.fixture(name=name)
    def fixture(request):
        import shared

        with shared.in_use(shared_root(request.config), name, alone) as ws:
            yield ws

    fixture.__doc__ = f"The shared workspace {name} (tests/shared.py), " + (
        "this test's alone while it runs." if alone else "read by tests side by side, each writing its own files."
    )
    return fixture


# A test that takes two takes them in this order (snake_ws, then dvc_ws): no two tests wait on each other.
snake_ws = _shared_fixture("snake_ws")
dvc_ws = _shared_fixture("dvc_ws")
exp_ws = _shared_fixture("exp_ws")
cli_ws = _shared_fixture("cli_ws", alone=False)  # each test's job writes folders of its own name


@pytest.fixture
def cluster(request):
    """The local one-node SLURM cluster, up (tests/shared.py: started once per run, stopped at
    its end if the run started it); without SLURM and root to install it: require("slurm")."""
    import shutil

    import shared

    if os.geteuid() != 0 and not shutil.which("sbatch"):
        require("slurm", "no SLURM here and not root to install it (scripts/slurm-local.sh)")
    shared.cluster_up(shared_root(request.config))


def _copy_fixture(name: str):
    @pytest.fixture(name=f"{name}_copy")
    def fixture(request):
        import shared

        return lambda dest, ignore=None: shared.copy_of(shared_root(request.config), name, dest, ignore)

    fixture.__doc__ = f"{name}_copy(dest, ignore=None): a private copy of the shared workspace {name} at dest."
    return fixture


snake_ws_copy = _copy_fixture("snake_ws")
dvc_ws_copy = _copy_fixture("dvc_ws")
