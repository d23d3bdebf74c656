"""Language stages.

`corpus`, `nli-data`: build the LM corpus and the NLI set from the sources params name.
`lm`: an LSTM/GRU language model trained with truncated BPTT; validation perplexity every
epoch, test perplexity as the metric. Its vocabulary is saved with it: the NLI stages read
sentences with it.
`nli-lm`: NLI with the LM's encoder ([u, v, |u-v|, u*v] into an MLP): frozen or finetuned
pretrained encoder, or the same encoder randomly initialised (trained, or frozen).
`nli-bert`: NLI with `transformers` BERT: frozen feature extractor + new head, full
finetuning, or a from-scratch BERT of chosen size.
Every NLI run trains on the training pairs less a seeded validation hold-out (train.val_fraction,
the per-epoch curve) and reports accuracy on validation_matched (test/acc) and
validation_mismatched (test_mismatched/acc): MNLI's test labels are hidden, and nothing is
selected on these two.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import engine, models
from .. import params as P
from ..io import atomic_torch_save
from ..text import bert as B
from ..text import data as D
from ..text import lm as L
from .common import file_digest, fit_head_on_features, parser, setup, training_parser

log = logging.getLogger("transferlab.nlp")


# ------------------------------------------------------------------ data
def _data_main(argv, what: str, family: str, build, describe: str) -> None:
    ap = parser(describe)
    ap.add_argument("--params", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    setup()
    p = P.load_stage(a.params, family)
    obj = build(p["text"][what], p["data"])
    D.save(obj, a.out)
    log.info("%s: %s, %s", D.describe(obj), {k: len(v) for k, v in obj["splits"].items()}, obj["meta"])


def corpus_main(argv=None) -> None:
    _data_main(argv, "corpus", "corpus", D.build_corpus, "Build the LM corpus (text.corpus)")


def nli_data_main(argv=None) -> None:
    _data_main(argv, "nli", "nli-data", D.build_nli, "Build the NLI set (text.nli)")


def _labels(obj: dict) -> dict[str, str]:
    return {"data": D.describe(obj)}


# ------------------------------------------------------------------ LM
def train_lm(corpus: dict, seed: int, p: dict, *, run_config: dict, ckpt=None, live_dir=None):
    cfg, tk = p["nlp"]["lm"], p["nlp"]["tokenizer"]
    vocab = L.Vocab.build(corpus["splits"]["train"], tk["kind"], tk["lowercase"], tk["max_vocab"], tk["min_freq"])
    device = engine.pick_device(p["train"]["device"])
    torch.manual_seed(seed)
    model = L.language_model(cfg, len(vocab)).to(device)
    ids = {s: L.stream(lines, vocab) for s, lines in corpus["splits"].items()}
    data = {s: L.BPTTData(x, cfg["batch_size"] if s == "train" else cfg["eval_batch_size"], cfg["bptt"], device)
            for s, x in ids.items()}
    task = engine.classification(len(vocab))
    fit_cfg = engine.FitConfig.from_params({**cfg, "clip_grad_norm": cfg["clip"]})
    res = engine.fit(model, task, data["train"], data["validation"], fit_cfg, seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"])
    for row in res.history:  # train/ppl is measured with dropout on, over the epoch's changing weights
        row["train/ppl"] = L.perplexity(row["train/loss"])
        row["val/ppl"] = L.perplexity(row["val/loss"])
    test = engine.evaluate(model, task, data["test"])
    summary = {"test/loss": test["loss"], "test/ppl": L.perplexity(test["loss"]), "test/acc": test["acc"],
               "val/ppl": res.history[-1]["val/ppl"], "data/vocab": float(len(vocab)),
               "data/train_tokens": float(ids["train"].numel()), "data/test_tokens": float(ids["test"].numel()),
               "data/test_unk_rate": L.unk_rate(ids["test"])}
    return model, vocab, res, summary


def lm_main(argv=None) -> None:
    a = training_parser("Train the RNN language model (truncated BPTT)").parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "lm")
    corpus = D.load(a.data, D.LM_SPLITS)
    run_config = {"stage": "lm", "params": p, "seed": a.seed, "data": file_digest(a.data)}
    out = Path(a.out)
    model, vocab, res, summary = train_lm(corpus, a.seed, p, run_config=run_config, ckpt=a.checkpoint,
                                          live_dir=out / "live")
    atomic_torch_save({"model": model.state_dict(), "vocab": vocab.state(), "lm_config": p["nlp"]["lm"],
                       "config": run_config}, out / "model.pt")
    engine.finish(res, summary, out / "metrics.json", a.checkpoint, _labels(corpus))
    log.info("LM on %s: %s", D.describe(corpus), summary)


# ------------------------------------------------------------------ NLI, shared
def _hold_out(x: torch.Tensor, y: torch.Tensor, frac: float, seed: int):
    """(train, val) pairs: a seeded random `frac` of them held out (engine.holdout)."""
    kept, held = engine.holdout(len(y), frac, seed)
    return (x[kept], y[kept]), (x[held], y[held]) if len(held) else None


def _token_data(xy, device) -> engine.DeviceData | None:
    return None if xy is None else engine.DeviceData(xy[0].to(device), xy[1].to(device), None, None)


def fit_nli(model: models.Net, encoded: dict, frozen: bool, cfg: dict, seed: int, p: dict, *, run_config: dict,
            ckpt=None, live_dir=None) -> tuple[engine.FitResult, dict]:
    """Train `model` on encoded {split: (x, y)}; return the result and the summary.

    Frozen: the encoder's features are computed once (eval mode: the inputs the head would
    see every epoch) and only the head trains on them; the encoder is checked unchanged and
    the assembled model (encoder + head) is what the matched/mismatched accuracies measure."""
    device = engine.pick_device(p["train"]["device"])
    model.to(device)
    (tr, va) = _hold_out(*encoded["train"], p["train"]["val_fraction"], seed)
    train, val = _token_data(tr, device), _token_data(va, device)
    task = engine.classification(3)
    fit_cfg = engine.FitConfig.from_params(cfg)
    common = dict(seed=seed, run_config=run_config, ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"],
                  progress=p["train"]["progress"])
    if frozen:
        res, _, _ = fit_head_on_features(model, task, train, val, fit_cfg, feature_batch=256, **common)
        res.extra["frozen_unchanged"] = 1.0
    else:
        res = engine.fit(model, task, train, val, fit_cfg, **common)
    summary = {"params/trainable": float(sum(p_.numel() for p_ in (model.heads if frozen else model).parameters())),
               "data/train_size": float(len(train)), **res.extra}
    for split, key in (("validation_matched", "test"), ("validation_mismatched", "test_mismatched")):
        for k, v in engine.evaluate(model, task, _token_data(encoded[split], device), batch_size=256).items():
            summary[f"{key}/{k}"] = v
    return res, summary


# ------------------------------------------------------------------ NLI with the LM's encoder
# variant -> (encoder from the LM?, encoder frozen?)
LM_VARIANTS = {"frozen": (True, True), "finetuned": (True, False), "random": (False, False),
               "random_frozen": (False, True)}


def nli_lm(nli: dict, lm_ck: dict, variant: str, seed: int, p: dict, **kw):
    cfg = p["nlp"]["nli_lm"]
    pretrained, frozen = LM_VARIANTS[variant]
    vocab = L.Vocab.from_state(lm_ck["vocab"])
    torch.manual_seed(seed)
    model = L.nli_model(lm_ck["lm_config"], len(vocab), cfg["pool"], cfg["hidden"], cfg["dropout"])
    loaded = L.load_encoder(model, lm_ck["model"]) if pretrained else None
    encoded = {s: L.pair_ids(rows, vocab, cfg["max_len"]) for s, rows in nli["splits"].items()}
    res, summary = fit_nli(model, encoded, frozen, cfg, seed, p, **kw)
    if loaded:
        summary["encoder/loaded_tensors"] = float(loaded["loaded"])
    # the share of the pairs' tokens the LM's vocabulary does not know
    summary["data/unk_rate"] = (sum(float((x == 1).sum()) for x, _ in encoded.values())
                                / sum(float((x != 0).sum()) for x, _ in encoded.values()))
    return res, summary


def nli_lm_main(argv=None) -> None:
    ap = training_parser("MNLI with the LM's encoder: [u, v, |u-v|, u*v] into an MLP", "--lm")
    ap.add_argument("--variant", required=True, choices=list(LM_VARIANTS))
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "nli-lm")
    nli = D.load(a.data, D.NLI_SPLITS)
    lm_ck = torch.load(a.lm, map_location="cpu", weights_only=False)
    run_config = {"stage": "nli-lm", "params": p, "seed": a.seed, "variant": a.variant, "data": file_digest(a.data),
                  "lm": file_digest(a.lm)}
    out = Path(a.out)
    res, summary = nli_lm(nli, lm_ck, a.variant, a.seed, p, run_config=run_config, ckpt=a.checkpoint,
                          live_dir=out / "live")
    engine.finish(res, summary, out / "metrics.json", a.checkpoint, _labels(nli))
    log.info("NLI, LM encoder %s: %s", a.variant, summary)


# ------------------------------------------------------------------ NLI with BERT
# variant -> (pretrained weights?, encoder frozen?)
BERT_VARIANTS = {"feature": (True, True), "finetune": (True, False), "scratch": (False, False)}


def nli_bert(nli: dict, variant: str, seed: int, p: dict, **kw):
    cfg = p["nlp"]["bert"]
    pretrained, frozen = BERT_VARIANTS[variant]
    download = p["data"]["download"]
    tok = B.tokenizer(cfg["checkpoint"], download)  # the from-scratch BERT reads the same WordPiece ids
    encoded = {s: B.encode_pairs(tok, rows, cfg["max_len"]) for s, rows in nli["splits"].items()}
    torch.manual_seed(seed)
    if pretrained:
        bert, info = B.load_pretrained(cfg["checkpoint"], download)
    else:
        bert, info = B.scratch_bert(cfg["scratch"], len(tok), cfg["max_len"]), None
    torch.manual_seed(seed)  # the new head's init depends on the seed only
    model = B.nli_model(bert, cfg["pool"], cfg["head_hidden"], cfg["dropout"])
    res, summary = fit_nli(model, encoded, frozen, cfg["optim"][variant], seed, p, **kw)
    if info is not None:
        summary["encoder/checkpoint_keys_left_out"] = float(len(info["unexpected"]))
    return res, summary


def nli_bert_main(argv=None) -> None:
    ap = training_parser("MNLI with transformers BERT (feature extractor, finetuned, or from scratch)")
    ap.add_argument("--variant", required=True, choices=list(BERT_VARIANTS))
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "nli-bert")
    nli = D.load(a.data, D.NLI_SPLITS)
    run_config = {"stage": "nli-bert", "params": p, "seed": a.seed, "variant": a.variant, "data": file_digest(a.data)}
    out = Path(a.out)
    res, summary = nli_bert(nli, a.variant, a.seed, p, run_config=run_config, ckpt=a.checkpoint,
                            live_dir=out / "live")
    labels = {**_labels(nli), "encoder": p["nlp"]["bert"]["checkpoint"] if a.variant != "scratch" else "scratch"}
    engine.finish(res, summary, out / "metrics.json", a.checkpoint, labels)
    log.info("NLI, BERT %s: %s", a.variant, summary)
