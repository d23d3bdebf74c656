"""Study 5b: language: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...figures import SEED_RANGE, Tables, chance_line, mean_sd_table, save, stand_in_note

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "nlp_perplexity": "Study 5b: language",
    "nlp_mnli": "Study 5b: language",
}


# Published results on the real data sets, measured elsewhere (cited, not reproduced here).
ANCHORS_LM = [
    ("AWD-LSTM (Merity et al. 2018)", 65.6),
    ("AWD-LSTM + finetuning", 64.7),
    ("AWD-LSTM + finetuning + cache pointer", 50.6),
]
# MNLI accuracies as fractions, like every accuracy in this report (the papers print percent).
ANCHORS_MNLI = [
    ("BiLSTM + ELMo + Attn (GLUE baseline)", 0.764, 0.761),
    ("BERT-base (Devlin et al. 2019)", 0.846, 0.834),
    ("BERT-tiny (Turc et al. 2019)", 0.702, 0.703),
    ("BERT-mini (Turc et al. 2019)", 0.748, 0.743),
]
NLI_PHASES = {"nli_lm": "our LM encoder", "nli_bert": "BERT"}


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import matplotlib.pyplot as plt  # here, not at the top: every job imports this module
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    s, c = t.summary, t.curves
    lm = c[(c.phase == "lm") & c.metric.isin(["val/ppl", "train/ppl"])]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(data=lm, x="epoch", y="value", hue="metric", errorbar=SEED_RANGE, marker="o", ax=ax)
    ax.set_yscale("log")
    ax.set(ylabel="perplexity", title="RNN LM: perplexity per epoch (train: with dropout)")
    figs = {"nlp_perplexity": save(fig, out, "nlp_perplexity")}
    nli = s[s.phase.isin(list(NLI_PHASES))].copy()
    nli["encoder"] = nli.phase.map(NLI_PHASES)
    long = nli.melt(
        id_vars=["encoder", "variant", "seed"],
        value_vars=["test/acc", "test_mismatched/acc"],
        var_name="split",
        value_name="accuracy",
    )
    long["split"] = long.split.map({"test/acc": "matched", "test_mismatched/acc": "mismatched"})
    g = sns.catplot(
        data=long,
        x="variant",
        y="accuracy",
        hue="split",
        col="encoder",
        kind="bar",
        errorbar="sd",
        height=3.2,
        aspect=1.2,
        sharex=False,
    )
    for ax in g.axes.flat:
        chance_line(ax, 1 / 3)  # three NLI labels
    g.set_titles("{col_name}")
    figs["nlp_mnli"] = save(g.figure, out, "nlp_mnli")
    lm_runs = s[s.phase == "lm"]
    lines = ["## Study 5b: language (RNN LM, MNLI with its encoder and with BERT)", ""]
    lines += stand_in_note(s["data"], "Data")
    lines += [
        "LM (test perplexity = exp(mean token NLL) on the test split; vocabulary from the training split):",
        "",
        mean_sd_table(lm_runs, ["variant"], "test/ppl"),
        "",
        f"Test tokens unknown to the vocabulary: {lm_runs['data/test_unk_rate'].mean():.3%}. Perplexities "
        "compare only at the same vocabulary and tokenization.",
        "",
        "NLI accuracy, matched (test/acc) and mismatched, by encoder and variant (dotted line: chance):",
        "",
        mean_sd_table(nli, ["encoder", "variant"], "test/acc"),
        "",
        mean_sd_table(nli, ["encoder", "variant"], "test_mismatched/acc"),
        "",
    ]
    if "data/unk_rate" in nli:
        rate = nli.loc[nli.phase == "nli_lm", "data/unk_rate"].mean()
        lines += [f"NLI tokens unknown to the LM's vocabulary: {rate:.1%}.", ""]
    lines += [
        "Anchors: published results on the real data (measured elsewhere, quoted for scale):",
        "",
        pd.DataFrame(ANCHORS_LM, columns=["WikiText-2 LM", "test perplexity"]).to_markdown(index=False),
        "",
        pd.DataFrame(ANCHORS_MNLI, columns=["MNLI model", "matched", "mismatched"]).to_markdown(index=False),
        "",
    ]
    return figs, lines
