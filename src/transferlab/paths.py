"""Where every stage's outputs live: one set of templates for Snakemake rules, the
aggregator and the dvc.yaml consistency test (dvc.yaml spells the same paths out)."""

PREPARED = "data/prepared/{dataset}.pt"
SUBSET = "data/subsets/{dataset}/k{k}_s{seed}.pt"
PRETRAIN = "results/pretext/{dataset}/pretrain/{target}/s{seed}"
FINETUNE = "results/pretext/{dataset}/finetune/{init}_f{frozen}/s{seed}"
RESULTS = "results"
SUMMARY = "results/summary.csv"
CURVES = "results/curves.csv"
METRICS = "results/metrics.json"
PLOTS = ["results/plots/pretext_pretrain_val_acc.csv", "results/plots/pretext_finetune_val_acc.csv"]
# Checkpoints are not outputs: both runners delete a failed job's outputs, which would
# throw away the state a resumed run needs.
CHECKPOINT = "checkpoints/{run}.pt"


def checkpoint(run_dir: str) -> str:
    return CHECKPOINT.format(run=run_dir)
