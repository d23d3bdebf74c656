"""The language study's reference models: an n-gram LM and a bag-of-words NLI classifier
(transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...floors import setting_text
from ...runs import Job
from ...stage import stage
from . import text
from . import vocab as words
from .baselines import LM


@stage(
    params=("text.corpus", "nlp.tokenizer", "nlp.lm.cell"),
    inputs={"data": paths.CORPUS},
    out=paths.REF_LM,
    resources="light",
)
def lm_references(job: Job) -> None:
    """The n-gram reference for the LM: an interpolated Kneser-Ney trigram on the LM's token
    stream (its vocabulary, built as the lm stage builds it), test perplexity."""
    corpus, tk = text.load(job.inputs["data"], text.LM_SPLITS), job.params["nlp"]["tokenizer"]
    vocab = words.Vocab.build(corpus["splits"]["train"], tk["kind"], tk["lowercase"], tk["max_vocab"], tk["min_freq"])
    ids = {s: words.stream(lines, vocab).tolist() for s, lines in corpus["splits"].items()}
    model = ref.KneserNey(ids["train"], len(vocab), order=3)
    setting = LM.setting(job.params)
    ref.write(
        ref.rows("nlp.lm", setting_text(setting), "test/ppl", {"kn_trigram": model.perplexity(ids["test"])}), job.out
    )


@stage(params=("text.nli",), inputs={"data": paths.NLI_DATA}, out=paths.REF_NLI, resources="light")
def nli_references(job: Job) -> None:
    """The bag-of-words reference for NLI: logistic regression on the pair's words, scored on
    the matched and mismatched validation splits (the NLI runs' test/acc and test_mismatched/acc)."""
    nli = text.load(job.inputs["data"], text.NLI_SPLITS)
    splits = nli["splits"]
    scores = ref.bag_of_words_nli(
        splits["train"],
        {"test/acc": splits["validation_matched"], "test_mismatched/acc": splits["validation_mismatched"]},
    )
    setting = setting_text({"data": nli["name"], "train": str(len(nli["splits"]["train"]))})
    ref.write(
        [
            {
                "baseline": "nlp.nli",
                "setting": setting,
                "reference": "bow_logreg",
                "metric": metric,
                "seed": None,
                "value": value,
            }
            for metric, value in scores.items()
        ],
        job.out,
    )
