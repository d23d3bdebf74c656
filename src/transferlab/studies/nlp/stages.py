"""Language stages.

(`corpus` and `nli_data`, which build the LM corpus and the NLI set, are data stages:
transferlab.stages.data.)
`lm`: an LSTM/GRU language model trained with truncated BPTT; validation perplexity every
epoch, test perplexity as the metric. Its vocabulary is saved with it: the NLI stages read
sentences with it.
`nli_lm`: NLI with the LM's encoder ([u, v, |u-v|, u*v] into an MLP): frozen or finetuned
pretrained encoder, or the same encoder randomly initialised (trained, or frozen).
`nli_bert`: NLI with `transformers` BERT: frozen feature extractor + new head, full
finetuning, or a from-scratch BERT of chosen size.
Every NLI run trains on the training pairs less a seeded validation hold-out (train.val_fraction:
the per-epoch curve, and the stop rule where `patience` is set, its best epoch kept) and reports
accuracy on validation_matched (test/acc) and validation_mismatched (test_mismatched/acc):
MNLI's test labels are hidden, and nothing is selected on these two. A linear head on a frozen
encoder's features is a logistic regression fit by L-BFGS to convergence (`linear_fit`).
"""

from __future__ import annotations

import logging

import torch

from ... import engine, models, paths
from ...io import atomic_torch_save, read_model
from ...runs import Job, Run
from ...stage import MEASURED, TRAINED, stage
from ...training import fit_head, fit_linear_head, heads_of, keep_best
from . import bert, language_model, text

log = logging.getLogger("transferlab.nlp")


def _labels(obj: dict) -> dict[str, str]:
    return {"data": text.describe(obj)}


# ------------------------------------------------------------------ LM
def train_lm(corpus: dict, p: dict, run: Run):
    cfg, tk, seed = p["nlp"]["lm"], p["nlp"]["tokenizer"], run.seed
    vocab = language_model.Vocab.build(
        corpus["splits"]["train"], tk["kind"], tk["lowercase"], tk["max_vocab"], tk["min_freq"]
    )
    device = run.device
    torch.manual_seed(seed)
    model = language_model.language_model(cfg, len(vocab)).to(device)
    ids = {s: language_model.stream(lines, vocab) for s, lines in corpus["splits"].items()}
    data = {
        s: language_model.BPTTData(
            x, cfg["batch_size"] if s == "train" else cfg["eval_batch_size"], cfg["bptt"], device
        )
        for s, x in ids.items()
    }
    task = engine.classification(len(vocab))
    fit_cfg = engine.FitConfig.from_params({**cfg, "clip_grad_norm": cfg["clip"]})
    # stopped by patience on validation loss (nlp.lm.patience), the best validation epoch tested
    res = engine.fit(model, task, data["train"], data["validation"], fit_cfg, run, select="val/loss")
    best = res.kept_best()
    model.load_state_dict(best["model"])
    for row in res.history:  # train/ppl is measured with dropout on, over the epoch's changing weights
        row["train/ppl"] = language_model.perplexity(row["train/loss"])
        row["val/ppl"] = language_model.perplexity(row["val/loss"])
    test = engine.evaluate(model, task, data["test"])
    summary = {
        "test/loss": test["loss"],
        "test/ppl": language_model.perplexity(test["loss"]),
        "test/acc": test["acc"],
        "val/ppl": language_model.perplexity(best["value"]),
        "best/epoch": float(best["epoch"]),
        "data/vocab": float(len(vocab)),
        "data/train_tokens": float(ids["train"].numel()),
        "data/test_tokens": float(ids["test"].numel()),
        "data/test_unk_rate": language_model.unk_rate(ids["test"]),
    }
    return model, vocab, res, summary


SEEDS = {"seed": "nlp.seeds"}


# A run's labels in the tables (stage.Stage.labels): the LM runs (phase lm), NLI on the LM's
# encoder (nli_lm) and with BERT (nli_bert).
def labels(phase: str):
    def of(p: dict, a: dict) -> dict:
        return {"phase": phase, "variant": a["variant"] if phase != "lm" else p["nlp"]["lm"]["cell"], "seed": a["seed"]}

    return of


@stage(
    params=("train", "nlp.tokenizer", "nlp.lm"),
    batch=SEEDS,
    inputs={"data": paths.CORPUS},
    runs=paths.LM,
    outputs=TRAINED,
    checkpoint=True,
    labels=labels("lm"),
)
def lm(job: Job) -> None:
    """Train the RNN language model (truncated BPTT), every seed."""
    corpus = text.load(job.inputs["data"], text.LM_SPLITS)
    for run in job.runs():
        model, vocab, res, summary = train_lm(corpus, job.params, run)
        atomic_torch_save(
            {
                "model": model.state_dict(),
                "vocab": vocab.state(),
                "lm_config": job.params["nlp"]["lm"],
                "config": run.config,
            },
            run.folder / "model.pt",
        )
        engine.write_metrics(res, summary, run, _labels(corpus))
        log.info("LM on %s, seed %d: %s", text.describe(corpus), run.seed, summary)


# ------------------------------------------------------------------ NLI, shared
Pairs = tuple[torch.Tensor, torch.Tensor]  # (x [N, ...], y [N])


def _hold_out(x: torch.Tensor, y: torch.Tensor, frac: float, seed: int) -> tuple[Pairs, Pairs | None]:
    """(train, val) pairs: a seeded random `frac` of them held out (engine.holdout)."""
    kept, held = engine.holdout(len(y), frac, seed)
    return (x[kept], y[kept]), (x[held], y[held]) if len(held) else None


def _token_data(xy: Pairs, device: torch.device) -> engine.DeviceData:
    return engine.DeviceData(xy[0].to(device), xy[1].to(device), None, None)


def encoder_features(model: models.Net, encoded: dict, device) -> dict[str, engine.DeviceData]:
    """A frozen encoder's outputs for every split's pairs, as data ({split: features [N, D]}):
    computed once (eval mode), they are the inputs its head sees every epoch."""
    model.to(device)
    return {
        split: engine.feature_data(model.features, _token_data(xy, device), batch_size=256)
        for split, xy in encoded.items()
    }


def _feature_split(xy: Pairs) -> engine.DeviceData:
    zero = torch.zeros((), device=xy[0].device)
    return engine.DeviceData(xy[0], xy[1], zero, zero + 1)


EVAL_SPLITS = (("validation_matched", "test"), ("validation_mismatched", "test_mismatched"))


def fit_nli(
    model: models.Net,
    encoded: dict,
    frozen: bool,
    cfg: dict,
    p: dict,
    run: Run,
    features: dict[str, engine.DeviceData] | None = None,
) -> tuple[engine.FitResult, dict]:
    """Train `model` on encoded {split: (x, y)}; return the result and the summary.

    Frozen: only the head trains, on the encoder's features (`features`, or computed here:
    encoder_features); a pretrained encoder's features do not depend on the seed, so a job
    computes them once for all its seeds. The encoder is checked unchanged, and the head on the
    same features scores the matched/mismatched splits (what encoder + head computes in eval mode)."""
    device = run.device
    model.to(device)
    task, fit_cfg, frac = engine.classification(3), engine.FitConfig.from_params(cfg), p["train"]["val_fraction"]
    # with a stop rule, the weights of the best validation epoch are kept
    select = fit_cfg.monitor if fit_cfg.patience > 0 else None
    if frozen:
        feats = features if features is not None else encoder_features(model, encoded, device)
        (tr, va) = _hold_out(feats["train"].images, feats["train"].labels, frac, run.seed)
        train, val = _feature_split(tr), _feature_split(va) if va is not None else None
        if isinstance(model.heads["main"], torch.nn.Linear) and "linear_fit" in cfg:
            # a linear head on frozen features: logistic regression, fit to convergence
            scored, fit = heads_of(model), cfg["linear_fit"]
            res = fit_linear_head(scored, task, train, val, run, C=fit["C"], max_iter=fit["max_iter"], tol=fit["tol"])
        else:
            res, scored = fit_head(model, task, train, val, fit_cfg, run, select=select)
            keep_best(scored, res)
        res.extra["frozen_unchanged"] = 1.0
        scored_data = {split: feats[split] for split, _ in EVAL_SPLITS}
    else:
        (tr, va) = _hold_out(encoded["train"][0], encoded["train"][1], frac, run.seed)
        train = _token_data(tr, device)
        val = _token_data(va, device) if va is not None else None
        res = engine.fit(model, task, train, val, fit_cfg, run, select=select)
        keep_best(model, res)
        scored, scored_data = model, {split: _token_data(encoded[split], device) for split, _ in EVAL_SPLITS}
    summary = {
        "params/trainable": float(sum(p_.numel() for p_ in (model.heads if frozen else model).parameters())),
        "data/train_size": float(len(train)),
        **res.extra,
    }
    for split, key in EVAL_SPLITS:
        for k, v in engine.evaluate(scored, task, scored_data[split], batch_size=256).items():
            summary[f"{key}/{k}"] = v
    return res, summary


def _shared_features(shared: dict | None, variant: str, seed_free: bool, model, encoded, device):
    """The features of a frozen encoder that does not depend on the seed (a pretrained BERT:
    the same checkpoint for every seed), computed by the job's first seed and reused by the
    others; None otherwise."""
    if shared is None or not seed_free:
        return None
    if variant not in shared:
        shared[variant] = encoder_features(model, encoded, device)
    return shared[variant]


# ------------------------------------------------------------------ NLI with the LM's encoder
# variant -> (encoder from the LM?, encoder frozen?)
LM_VARIANTS = {
    "frozen": (True, True),
    "finetuned": (True, False),
    "random": (False, False),
    "random_frozen": (False, True),
}


def train_nli_lm(nli: dict, lm_ck: dict, variant: str, p: dict, run: Run):
    cfg, seed = p["nlp"]["nli_lm"], run.seed
    pretrained, frozen = LM_VARIANTS[variant]
    vocab = language_model.Vocab.from_state(lm_ck["vocab"])
    torch.manual_seed(seed)
    model = language_model.nli_model(lm_ck["lm_config"], len(vocab), cfg["pool"], cfg["hidden"], cfg["dropout"])
    loaded = language_model.load_encoder(model, lm_ck["model"]) if pretrained else None
    encoded = {s: language_model.pair_ids(rows, vocab, cfg["max_len"]) for s, rows in nli["splits"].items()}
    res, summary = fit_nli(model, encoded, frozen, cfg, p, run)  # each seed's own LM: nothing to share
    if loaded:
        summary["encoder/loaded_tensors"] = float(loaded["loaded"])
    # the share of the pairs' tokens the LM's vocabulary does not know
    summary["data/unk_rate"] = sum(float((x == 1).sum()) for x, _ in encoded.values()) / sum(
        float((x != 0).sum()) for x, _ in encoded.values()
    )
    return res, summary


# vocabulary and encoder shape come with the LM
@stage(
    params=("train", "nlp.nli_lm"),
    batch={"variant": "nlp.nli_lm.variants", **SEEDS},
    inputs={"data": paths.NLI_DATA, "lm": paths.LM + "/model.pt"},
    runs=paths.NLI_LM,
    outputs=MEASURED,
    checkpoint=True,
    labels=labels("nli_lm"),
)
def nli_lm(job: Job) -> None:
    """MNLI with the LM's encoder ([u, v, |u-v|, u*v] into an MLP): every variant and seed."""
    nli = text.load(job.inputs["data"], text.NLI_SPLITS)
    for run in job.runs():
        lm_ck = read_model(run.inputs["lm"], "the language model's model.pt")
        res, summary = train_nli_lm(nli, lm_ck, run.axes["variant"], job.params, run)
        engine.write_metrics(res, summary, run, _labels(nli))
        log.info("NLI, LM encoder %s, seed %d: %s", run.axes["variant"], run.seed, summary)


# ------------------------------------------------------------------ NLI with BERT
# variant -> (pretrained weights?, encoder frozen?)
BERT_VARIANTS = {"feature": (True, True), "finetune": (True, False), "scratch": (False, False)}


def train_nli_bert(nli: dict, variant: str, p: dict, run: Run, shared: dict | None = None):
    """`shared`: the job's cache of a pretrained frozen encoder's features, by variant."""
    cfg, seed = p["nlp"]["bert"], run.seed
    pretrained, frozen = BERT_VARIANTS[variant]
    download = p["data"]["download"]
    tok = bert.tokenizer(cfg["checkpoint"], download)  # the from-scratch BERT reads the same WordPiece ids
    encoded = {s: bert.encode_pairs(tok, rows, cfg["max_len"]) for s, rows in nli["splits"].items()}
    torch.manual_seed(seed)
    if pretrained:
        encoder, info = bert.load_pretrained(cfg["checkpoint"], download)
    else:
        encoder, info = bert.scratch_bert(cfg["scratch"], len(tok), cfg["max_len"]), None
    torch.manual_seed(seed)  # the new head's init depends on the seed only
    model = bert.nli_model(encoder, cfg["pool"], cfg["head_hidden"], cfg["dropout"])
    res, summary = fit_nli(
        model,
        encoded,
        frozen,
        cfg["optim"][variant],
        p,
        run,
        _shared_features(shared, variant, pretrained and frozen, model, encoded, run.device),
    )
    if info is not None:
        summary["encoder/checkpoint_keys_left_out"] = float(len(info["unexpected"]))
    return res, summary


@stage(
    params=("train", "data.download", "nlp.bert"),
    batch={"variant": "nlp.bert.variants", **SEEDS},
    inputs={"data": paths.NLI_DATA},
    runs=paths.NLI_BERT,
    outputs=MEASURED,
    checkpoint=True,
    labels=labels("nli_bert"),
)
def nli_bert(job: Job) -> None:
    """MNLI with transformers BERT (feature extractor, finetuned, or from scratch): every variant and seed."""
    nli = text.load(job.inputs["data"], text.NLI_SPLITS)
    shared: dict = {}  # a pretrained frozen encoder's features, by variant (train_nli_bert)
    for run in job.runs():
        variant = run.axes["variant"]
        res, summary = train_nli_bert(nli, variant, job.params, run, shared)
        encoder = job.params["nlp"]["bert"]["checkpoint"] if variant != "scratch" else "scratch"
        engine.write_metrics(res, summary, run, {**_labels(nli), "encoder": encoder})
        log.info("NLI, BERT %s, seed %d: %s", variant, run.seed, summary)
