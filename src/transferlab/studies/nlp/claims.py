"""The language study's claims, and the baseline each presupposes (with its setting and floors)."""

from __future__ import annotations

from collections.abc import Iterator

from ...claims import ACC, source_fields, with_sesoi
from ...floors import BaselineScore, baseline
from ...scorecard import Claim, Comparison, Expect, Results, SourceEffect, compare
from .baselines import LM

MNLI_BERT = SourceEffect(
    0.082,
    "MNLI-m: BERT-base finetuned 84.6 vs BiLSTM+ELMo+Attn 76.4 (published anchors)",
    "BERT-base finetuned against BiLSTM+ELMo+Attn, all of MNLI",
)


def _nli_data(r: Results) -> str:
    df = r.summary.get("nlp")
    if df is None or "data" not in df:
        return "-"
    rows = df[df.phase == "nli_lm"]["data"].dropna()
    return str(rows.iloc[0]) if len(rows) else "-"


def _nlp(r: Results, phase: str, variant: str):
    return r.values("nlp", ACC, phase=phase, variant=variant)


def _lm_base(r: Results) -> tuple[BaselineScore]:
    """The LM learned its corpus (test perplexity under its ceiling): an encoder worth testing."""
    return (baseline(LM, r, r.values("nlp", "test/ppl", phase="lm")),)


def _nli_lm(r: Results) -> Iterator[Comparison]:
    for pre, rand in (("frozen", "random_frozen"), ("finetuned", "random")):
        yield compare(
            f"{pre} pretrained encoder vs {rand}",
            _nli_data(r),
            _nlp(r, "nli_lm", pre),
            _nlp(r, "nli_lm", rand),
            pre,
            rand,
            baselines=_lm_base(r),
        )


def _nli_bert(r: Results) -> Iterator[Comparison]:
    for bert in r.params["nlp"]["bert"]["variants"]:
        if bert == "scratch":  # a randomly initialised BERT is no pretrained model
            continue
        for lm in ("finetuned", "random"):
            yield compare(
                f"BERT {bert} vs LM encoder {lm}",
                _nli_data(r),
                _nlp(r, "nli_bert", bert),
                _nlp(r, "nli_lm", lm),
                f"bert {bert}",
                f"lm {lm}",
                baselines=_lm_base(r),
                **source_fields(
                    MNLI_BERT if (bert, lm) == ("finetune", "finetuned") else None,
                    f"here {r.params['nlp']['bert'].get('checkpoint', 'a small BERT')} against this "
                    "project's RNN LM encoder",
                ),
            )


CLAIMS = with_sesoi(
    [
        Claim(
            "nlp.lm_encoder",
            "nlp",
            "A pretrained LM encoder beats a random one on MNLI.",
            "transfer assignment",
            "pretrained above random",
            "pretrained - random encoder, test acc.",
            Expect(">"),
            _nli_lm,
        ),
        Claim(
            "nlp.bert",
            "nlp",
            "BERT beats the LM encoder and a random one on MNLI.",
            "transfer assignment",
            "MNLI-m: BiLSTM+ELMo 76.4, BERT-base 84.6",
            "BERT - LM encoder, test acc.",
            Expect(">"),
            _nli_bert,
        ),
    ]
)


# What a row's interval over seeds covers (study.Study.covers): each seed redraws these.
COVERS = (
    "per seed: every start and order, the NLI validation hold-out; not covered: the corpus and the NLI "
    "split (one draw), the BERT checkpoint (one pretrained model)"
)
