"""Reference models: simple, well-known models that need no tuning, fit on exactly the training
examples a baseline sees and scored on the same test split. They say what "learned its task"
means without reference to the runs being judged (transferlab.floors turns them into floors):

- images: multinomial logistic regression on the raw pixels (scikit-learn's defaults, C = 1,
  pixels in [0, 1], fit by L-BFGS to its tolerance; a fit that stops at max_iter is an error,
  not a reference) and k-nearest neighbours on the same pixels (scikit-learn's default k = 5,
  Euclidean);
- the language model: an interpolated Kneser-Ney trigram on the LM's own token stream (its
  vocabulary, <unk> and <eos>), test perplexity over the same targets;
- NLI: logistic regression on the bags of words of the premise and of the hypothesis, side by
  side (the pair's words, not their meaning: the level a model that reads the pair must beat).

A reference row: the baseline it stands beside, the setting's labels, reference, metric, seed,
value. Per seed where the baseline's training examples are drawn per seed (labels per class).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from .data import format as fmt
from .data import subsample
from .data.format import Split
from .floors import setting_text
from .io import atomic_path

# scikit-learn is imported where a reference is fit, not at the top: every job imports the
# studies' declarations (transferlab.catalog), which reach this module, and scikit-learn took
# 1.9 of the 8 s such an import took on this machine under load.

# scikit-learn's defaults but the iteration cap: the fit runs to L-BFGS's tolerance (a fit that
# needs more than LOGREG_MAX_ITER iterations raises, so no reference is an unconverged one)
LOGREG_MAX_ITER = 10_000
CSV_COLUMNS = ["baseline", "setting", "reference", "metric", "seed", "value"]


def pixels(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """float [n, c*h*w] in [0, 1] (the stored uint8 / 255), int labels [n]."""
    x = split.images.reshape(len(split.images), -1).float().numpy() / 255.0
    return x, split.labels.numpy()


def logistic_regression():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=LOGREG_MAX_ITER, tol=1e-4)


def knn(n: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=min(5, n))


def _fit(model, x, y, what: str):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            return model.fit(x, y)
        except ConvergenceWarning as err:
            raise RuntimeError(f"reference {what} did not converge in {LOGREG_MAX_ITER} iterations") from err


IMAGE_REFERENCES: dict[str, Callable[[int], object]] = {  # name -> (training examples -> model)
    "logreg_pixels": lambda n: logistic_regression(),
    # k = 5, Euclidean: scikit-learn's defaults (fewer where fewer examples than 5 were drawn)
    "knn_pixels": knn,
}


def image_scores(train: Split, test: Split) -> dict[str, float]:
    """{reference: test accuracy} of every image reference fit on `train`."""
    (x, y), (xt, yt) = pixels(train), pixels(test)
    return {name: float(_fit(make(len(y)), x, y, name).score(xt, yt)) for name, make in IMAGE_REFERENCES.items()}


def rows(baseline: str, setting: str, metric: str, scores: dict[str, float], seed: int | None = None) -> list[dict]:
    return [
        {"baseline": baseline, "setting": setting, "reference": name, "metric": metric, "seed": seed, "value": value}
        for name, value in scores.items()
    ]


# ------------------------------------------------------------------ the n-gram language model
class KneserNey:
    """Interpolated Kneser-Ney n-gram model over integer tokens (Chen & Goodman 1999, eq. 26,
    one absolute discount per order, D = n1 / (n1 + 2 n2)); the lowest order interpolates with
    the uniform distribution over the vocabulary, so every token has a probability."""

    def __init__(self, tokens: Iterable[int], vocab_size: int, order: int = 3):
        self.order, self.vocab_size = order, vocab_size
        seq = list(tokens)
        # counts[n][(context, word)]: raw counts at the highest order, continuation counts below
        grams = [Counter(tuple(seq[i - n : i + 1]) for i in range(n, len(seq))) for n in range(order)]
        self.counts: list[Counter[tuple]] = [Counter() for _ in range(order)]
        self.counts[order - 1] = grams[order - 1]
        for n in range(order - 1):  # N1+(. w_{i-n..i}): distinct left extensions
            self.counts[n] = Counter(g[1:] for g in grams[n + 1])
        self.discount = [self._discount(c) for c in self.counts]
        self.context_total: list[defaultdict[tuple, int]] = [defaultdict(int) for _ in range(order)]
        self.context_types: list[defaultdict[tuple, int]] = [defaultdict(int) for _ in range(order)]
        for n, counts in enumerate(self.counts):
            for gram, c in counts.items():
                self.context_total[n][gram[:-1]] += c
                self.context_types[n][gram[:-1]] += 1

    @staticmethod
    def _discount(counts: Counter) -> float:
        n1 = sum(1 for c in counts.values() if c == 1)
        n2 = sum(1 for c in counts.values() if c == 2)
        return n1 / (n1 + 2 * n2) if n1 + n2 else 0.5

    def prob(self, context: tuple[int, ...], word: int) -> float:
        p = 1.0 / self.vocab_size
        for n in range(min(self.order, len(context) + 1)):  # from unigrams up, each interpolating the one below
            ctx = context[len(context) - n :] if n else ()
            total = self.context_total[n].get(ctx, 0)
            if total == 0:
                continue  # an unseen context: the lower order's estimate stands
            d = self.discount[n]
            c = self.counts[n].get((*ctx, word), 0)
            p = max(c - d, 0.0) / total + d * self.context_types[n][ctx] / total * p
        return p

    def perplexity(self, tokens: list[int]) -> float:
        """exp of the mean negative log-probability of tokens[1:], each given those before it."""
        k = self.order - 1
        nll = [-math.log(self.prob(tuple(tokens[max(0, i - k) : i]), tokens[i])) for i in range(1, len(tokens))]
        return math.exp(sum(nll) / len(nll))


# ------------------------------------------------------------------ NLI
def bag_of_words_nli(train: list, tests: dict[str, list]) -> dict[str, float]:
    """Accuracy on each of `tests` of logistic regression on [bag of premise words, bag of
    hypothesis words] (binary counts, the vocabulary of the training pairs). Rows: (premise,
    hypothesis, label)."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(binary=True, lowercase=True)
    vectorizer.fit([r[0] for r in train] + [r[1] for r in train])

    def features(pairs: list):
        return sparse.hstack([vectorizer.transform([r[0] for r in pairs]), vectorizer.transform([r[1] for r in pairs])])

    model = _fit(logistic_regression(), features(train), [r[2] for r in train], "bow_logreg")
    return {name: float(model.score(features(pairs), [r[2] for r in pairs])) for name, pairs in tests.items()}


# ------------------------------------------------------------------ a reference job's rows
# Each study's reference stages (studies/<study>/references.py) read their data through the files
# the baseline reads (a prepared set, or the per-seed subsets), so a change to a data set's params
# reruns its references, and only those. A file carries its data set's params entry
# (meta["params"]), from which the setting's data identity and size are read, as the scorecard
# reads them from params.yaml.
ACC = "test/acc"


def with_data(params: dict, ds) -> dict:
    """`params` with the data set's own params entry, as the prepared file carries it."""
    return {**params, "datasets": {ds.name: ds.meta.get("params", {})}}


def write(rows: list[dict], out) -> None:
    """A reference job's rows, as results/references/<...>.csv."""
    with atomic_path(out, ".csv") as tmp:
        pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(tmp, index=False)


def per_seed(baseline: str, setting: dict, ds, per_class: int, seeds: list[int]) -> list[dict]:
    """The image references on each seed's draw of per_class examples per class, drawn as the
    subsample stages draw the baseline's (subsample.per_class with the seed), scored on the test split."""
    out, train = [], ds.splits["train"]
    for seed in seeds:
        part = train.subset(subsample.per_class(train, per_class, seed))
        out += rows(baseline, setting_text(setting), ACC, image_scores(part, ds.splits["test"]), seed)
    return out


def whole_split(job, baseline) -> None:
    """References on the whole training split of the job's data set (one draw); `baseline`: a
    floors.Baseline."""
    ds = fmt.load(job.inputs["data"])
    setting = baseline.setting(with_data(job.params, ds))
    write(rows(baseline.name, setting_text(setting), ACC, image_scores(ds.splits["train"], ds.splits["test"])), job.out)
