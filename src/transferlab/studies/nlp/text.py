"""Text data: an LM corpus (lines per split) and an NLI set (premise, hypothesis, label per
split), each built from the source its params section names (a registry, as for images).

On-disk form (what later stages read), one JSON file each, written atomically:
  corpus: {"name", "source", "meta", "splits": {"train"|"validation"|"test": [line, ...]}}
  nli:    {"name", "source", "meta", "labels": LABELS,
           "splits": {"train"|"validation_matched"|"validation_mismatched": [[premise, hypothesis, label], ...]}}

Real data comes through HF `datasets` (`source: hf`): a hub id (WikiText-2 is
`Salesforce/wikitext`, config `wikitext-2-raw-v1`; MNLI is `nyu-mll/glue`, config `mnli`) or
local files in a format `datasets` reads (`path: parquet|text|csv|json` plus `data_files`):
the hub's own parquet files, copied to an offline node, load that way. The offline stand-ins
are `pydoc` (the English documentation text that ships with every CPython) and `templates`
(an NLI set generated from sentence templates); their names say what they are everywhere.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

from ...data.format import DataError
from ...io import atomic_write_json, read_json

# MNLI's label ids, as GLUE and HF `datasets` number them.
LABELS = ("entailment", "neutral", "contradiction")
LM_SPLITS = ("train", "validation", "test")
NLI_SPLITS = ("train", "validation_matched", "validation_mismatched")


# ------------------------------------------------------------------ HF datasets (real data)
def _hf_load(cfg: dict, data: dict, what: str):
    """`datasets.load_dataset` with the source's arguments. With data.download false the hub is
    never contacted (HF_HUB_OFFLINE): a hub id then loads only from the local HF cache, where a
    login node with internet put it (pre-staging), and local files load as they are."""
    if not data["download"]:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    import datasets

    kwargs = dict(cfg.get("kwargs", {}))
    if cfg.get("data_files"):
        missing = [str(f) for f in cfg["data_files"].values() if not Path(f).exists()]
        if missing:
            raise DataError(f"text.{what}.data_files: not found: {', '.join(missing)}")
        kwargs["data_files"] = {k: str(v) for k, v in cfg["data_files"].items()}
    try:
        return datasets.load_dataset(cfg["path"], cfg.get("name"), **kwargs)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as e:
        hint = (
            ""
            if data["download"]
            else (
                " (data.download is false: pre-stage it into the HF cache on a machine "
                "with internet, or point data_files at local copies)"
            )
        )
        raise DataError(f"text.{what}: could not load {cfg['path']!r} {cfg.get('name') or ''}: {e}{hint}") from e


def _carve(lines: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """Split off the last `fraction` of a list (contiguous: an LM's validation text is a
    stretch of running text, not scattered lines)."""
    n = int(round(len(lines) * fraction))
    return (lines[: len(lines) - n], lines[len(lines) - n :]) if n else (lines, [])


def corpus_from_splits(raw: dict[str, list[str]], cfg: dict, what: str = "corpus") -> dict[str, list[str]]:
    """Non-blank lines per LM split; a missing validation split is carved from the end of
    train (cfg val_fraction). Every split must end up non-empty."""
    out = {k: [ln.rstrip("\n") for ln in v if ln.strip()] for k, v in raw.items()}
    if "validation" not in out and "train" in out:
        out["train"], out["validation"] = _carve(out["train"], cfg.get("val_fraction", 0.1))
    bad = [s for s in LM_SPLITS if not out.get(s)]
    if bad:
        raise DataError(
            f"text.{what}: split(s) {bad} missing or empty (have {sorted(out)}); an LM corpus needs "
            f"{list(LM_SPLITS)} (validation may be carved from train with val_fraction)"
        )
    return {s: out[s] for s in LM_SPLITS}


def corpus_hf(cfg: dict, data: dict) -> tuple[dict[str, list[str]], dict]:
    dd = _hf_load(cfg, data, "corpus")
    col = cfg.get("text_column", "text")
    raw = {split: list(dd[split][col]) for split in dd}
    return corpus_from_splits(raw, cfg), {"hf": {k: cfg.get(k) for k in ("path", "name", "data_files")}}


def corpus_pydoc(cfg: dict, data: dict) -> tuple[dict[str, list[str]], dict]:
    """STAND-IN: the English text of Python's own documentation topics (`pydoc_data.topics`,
    shipped with CPython, about 65k words). Whole topics are assigned to splits (seeded), so
    validation and test are unseen documents, as WikiText-2's are unseen articles."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    random.Random(cfg["seed"]).shuffle(names)
    n_test = max(1, round(len(names) * cfg["test_fraction"]))
    n_val = max(1, round(len(names) * cfg["val_fraction"]))
    rest = names[n_test + n_val :]
    # a share of the remaining topics for training (a smaller corpus, for time); the same test
    # and validation topics whatever the share
    n_train = max(1, round(len(rest) * cfg.get("train_fraction", 1.0)))
    parts = {"test": names[:n_test], "validation": names[n_test : n_test + n_val], "train": rest[:n_train]}
    raw = {s: [ln for t in ts for ln in topics[t].splitlines()] for s, ts in parts.items()}
    return corpus_from_splits(raw, cfg), {
        "topics": {s: len(ts) for s, ts in parts.items()},
        "stand_in": "Python documentation text (pydoc_data), not WikiText-2",
    }


CORPUS_SOURCES: dict[str, Callable[[dict, dict], tuple[dict[str, list[str]], dict]]] = {
    "hf": corpus_hf,
    "pydoc": corpus_pydoc,
}


# ------------------------------------------------------------------ NLI
def label_id(value, where: str) -> int | None:
    """MNLI label -> 0/1/2 (entailment/neutral/contradiction). Accepts GLUE's ids and the TSV
    files' gold_label strings; -1 and '-' (no gold label: annotators disagreed, or a hidden
    test label) -> None, and such pairs are dropped."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("-", "", "-1"):
            return None
        if v in LABELS:
            return LABELS.index(v)
        if v.lstrip("-").isdigit():
            value = int(v)
        else:
            raise DataError(f"{where}: unknown NLI label {value!r}; expected one of {LABELS} or 0/1/2 (-1: none)")
    value = int(value)
    if value == -1:
        return None
    if value not in (0, 1, 2):
        raise DataError(f"{where}: NLI label id {value} out of range; expected 0/1/2 (-1: none)")
    return value


def nli_hf(cfg: dict, data: dict) -> tuple[dict[str, list], dict]:
    dd = _hf_load(cfg, data, "nli")
    cols = {"premise": "premise", "hypothesis": "hypothesis", "label": "label", **cfg.get("columns", {})}
    missing = [s for s in NLI_SPLITS if s not in dd]
    if missing:
        raise DataError(f"text.nli: split(s) {missing} not in {cfg['path']!r} (have {list(dd)})")
    splits, dropped = {}, {}
    for s in NLI_SPLITS:
        t = dd[s]
        absent = [c for c in cols.values() if c not in t.column_names]
        if absent:
            raise DataError(
                f"text.nli: split {s} has no column(s) {absent} (columns: {t.column_names}); "
                "map them with text.nli.columns"
            )
        rows = []
        for p, h, y in zip(t[cols["premise"]], t[cols["hypothesis"]], t[cols["label"]]):
            lab = label_id(y, f"text.nli split {s}")
            if lab is not None and p and h:
                rows.append([p, h, lab])
        dropped[s] = len(t) - len(rows)
        splits[s] = rows
    return splits, {"hf": {k: cfg.get(k) for k in ("path", "name", "data_files")}, "dropped_unlabelled": dropped}


# Sentence templates for the stand-in NLI set. Each genre turns (rng, label) into a pair;
# train and validation_matched draw from MATCHED genres, validation_mismatched from genres
# never seen in training (as MNLI's mismatched genres are).
_SUBJ = [
    ("man", "person"),
    ("woman", "person"),
    ("boy", "child"),
    ("girl", "child"),
    ("dog", "animal"),
    ("cat", "animal"),
    ("teacher", "person"),
    ("doctor", "person"),
    ("student", "person"),
    ("horse", "animal"),
]
_ADJ = ["tall", "young", "old", "small", "happy", "tired", "quiet", "busy"]
_ACT = ["running", "sleeping", "eating", "reading", "singing", "swimming", "walking", "sitting", "playing"]
_PLACE = ["park", "kitchen", "street", "library", "beach", "garden", "station", "office"]
_EXTRA = ["with a friend", "for the first time", "after work", "because it is late", "in the morning"]
_OBJ = ["book", "cup", "key", "phone", "lamp", "ball", "letter", "bag"]
_FURN = ["table", "chair", "shelf", "bed", "desk"]
_ROOM = ["kitchen", "bedroom", "hall", "garage", "office"]
_THING = ["apples", "coins", "books", "pens", "tickets"]
_NUM = ["two", "three", "four", "five", "six"]


def _other(rng: random.Random, xs: list, x):
    return rng.choice([v for v in xs if v != x])


def _activity(rng, label):
    (s, hyper), a, act, pl = rng.choice(_SUBJ), rng.choice(_ADJ), rng.choice(_ACT), rng.choice(_PLACE)
    prem = f"a {a} {s} is {act} in the {pl} ."
    hyp = rng.choice(
        [
            [f"a {hyper} is {act} .", f"a {s} is in the {pl} .", f"a {s} is {act} ."],
            [
                f"a {a} {s} is {act} in the {pl} {rng.choice(_EXTRA)} .",
                f"a {_other(rng, _ADJ, a)} {s} is {act} .",
                f"the {s} is {act} to win a prize .",
            ],
            [
                f"a {a} {s} is {_other(rng, _ACT, act)} in the {pl} .",
                f"nobody is {act} in the {pl} .",
                f"the {s} is not {act} .",
            ],
        ][label]
    )
    return prem, hyp


def _location(rng, label):
    o, f, r = rng.choice(_OBJ), rng.choice(_FURN), rng.choice(_ROOM)
    prem = f"the {o} is on the {f} in the {r} ."
    hyp = rng.choice(
        [
            [f"the {o} is in the {r} .", f"there is a {o} on the {f} .", f"something is on the {f} ."],
            [f"the {o} is new .", f"the {o} belongs to the {rng.choice(_SUBJ)[0]} .", f"the {f} is made of wood ."],
            [
                f"the {o} is under the {f} .",
                f"the {o} is in the {_other(rng, _ROOM, r)} .",
                f"there is no {o} in the {r} .",
            ],
        ][label]
    )
    return prem, hyp


def _quantity(rng, label):
    (s, _), i, t = rng.choice(_SUBJ[:4] + _SUBJ[6:9]), rng.randrange(1, len(_NUM)), rng.choice(_THING)
    prem = f"the {s} has {_NUM[i]} {t} ."
    hyp = rng.choice(
        [
            [f"the {s} has some {t} .", f"the {s} has more than one of the {t} ."],
            [f"the {s} wants more {t} .", f"the {s} bought the {t} yesterday ."],
            [f"the {s} has no {t} .", f"the {s} has {_NUM[i - 1]} {t} and nothing more ."],
        ][label]
    )
    return prem, hyp


def _time(rng, label):
    (s, hyper), pl, h = rng.choice(_SUBJ), rng.choice(_PLACE), rng.choice(_NUM)
    prem = f"the {s} arrived at the {pl} before {h} o'clock ."
    hyp = rng.choice(
        [
            [f"the {s} arrived at the {pl} .", f"a {hyper} was at the {pl} ."],
            [f"the {s} arrived at the {pl} by bus .", f"the {s} was late for work ."],
            [f"the {s} never went to the {pl} .", f"nobody arrived at the {pl} ."],
        ][label]
    )
    return prem, hyp


def _comparison(rng, label):
    (a, _), (b, _) = rng.sample(_SUBJ, 2)
    prem = f"the {a} is taller than the {b} ."
    hyp = rng.choice(
        [
            [f"the {b} is shorter than the {a} .", f"the {b} is not as tall as the {a} ."],
            [f"the {a} is older than the {b} .", f"the {b} is happy ."],
            [f"the {a} is shorter than the {b} .", f"the {b} is taller than the {a} ."],
        ][label]
    )
    return prem, hyp


MATCHED_GENRES = {"activity": _activity, "location": _location, "quantity": _quantity}
MISMATCHED_GENRES = {"time": _time, "comparison": _comparison}


def nli_templates(cfg: dict, data: dict) -> tuple[dict[str, list], dict]:
    """STAND-IN for MNLI: pairs generated from templates, labels balanced and seeded."""
    rng = random.Random(cfg["seed"])

    def draw(n: int, genres: dict) -> list:
        fns = list(genres.values())
        return [[*rng.choice(fns)(rng, y), y] for y in (rng.randrange(3) for _ in range(n))]

    splits = {
        "train": draw(cfg["train"], MATCHED_GENRES),
        "validation_matched": draw(cfg["validation"], MATCHED_GENRES),
        "validation_mismatched": draw(cfg["validation"], MISMATCHED_GENRES),
    }
    return splits, {
        "stand_in": "template-generated NLI pairs, not MNLI",
        "genres": {"matched": list(MATCHED_GENRES), "mismatched": list(MISMATCHED_GENRES)},
    }


NLI_SOURCES: dict[str, Callable[[dict, dict], tuple[dict[str, list], dict]]] = {
    "hf": nli_hf,
    "templates": nli_templates,
}


# ------------------------------------------------------------------ build, save, load
def _source(registry: dict, cfg: dict, what: str) -> Callable:
    src = cfg.get("source")
    if src not in registry:
        raise DataError(f"text.{what}.source: unknown {src!r}; expected one of {list(registry)}")
    return registry[src]


def _name(cfg: dict) -> str:
    """What the set is called in logs, tables and the report: the hub id (and config) or the
    local files for `hf`, the source otherwise."""
    if cfg["source"] != "hf":
        return cfg["source"]
    name = cfg["path"] + (f":{cfg['name']}" if cfg.get("name") else "")
    if cfg.get("data_files"):
        name += " (" + ", ".join(f"{k}={Path(v).name}" for k, v in cfg["data_files"].items()) + ")"
    return name


def build_corpus(cfg: dict, data: dict) -> dict:
    splits, meta = _source(CORPUS_SOURCES, cfg, "corpus")(cfg, data)
    return {"name": _name(cfg), "source": cfg["source"], "meta": meta, "splits": splits}


def build_nli(cfg: dict, data: dict) -> dict:
    splits, meta = _source(NLI_SOURCES, cfg, "nli")(cfg, data)
    if cfg.get("max_train") and len(splits["train"]) > cfg["max_train"]:
        # a seeded subset, for CPU-sized runs on the 393k MNLI training pairs
        rng = random.Random(cfg.get("seed", 0))
        meta["train_full"] = len(splits["train"])
        splits["train"] = rng.sample(splits["train"], cfg["max_train"])
    counts = {s: [sum(1 for r in rows if r[2] == k) for k in range(3)] for s, rows in splits.items()}
    meta["label_counts"] = counts
    return {"name": _name(cfg), "source": cfg["source"], "meta": meta, "labels": list(LABELS), "splits": splits}


def save(obj: dict, path: str | Path) -> None:
    atomic_write_json(path, obj)


def load(path: str | Path, splits: tuple[str, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found (run the text data stage first)")
    obj = read_json(path, "a text data set written by the text stage")
    missing = [s for s in splits if s not in obj.get("splits", {})]
    if missing:
        raise DataError(f"{path}: split(s) {missing} missing (have {list(obj.get('splits', {}))})")
    return obj


def describe(obj: dict) -> str:
    """What a text set is, for logs and reports: stand-ins say so."""
    stand_in = obj["meta"].get("stand_in")
    return f"{obj['name']} ({obj['source']}{'; STAND-IN: ' + stand_in if stand_in else ''})"
