"""Where every stage's outputs live: one set of templates for Snakemake rules, the
aggregator and the dvc.yaml consistency test (dvc.yaml spells the same paths out)."""

PREPARED = "data/prepared/{dataset}.pt"
SUBSET = "data/subsets/{dataset}/k{k}_s{seed}.pt"
# Study 1: pretext
PRETRAIN = "results/pretext/{dataset}/pretrain/{target}/s{seed}"
FINETUNE = "results/pretext/{dataset}/finetune/{init}_f{frozen}/s{seed}"
# Study 2: semi-supervised ({dataset} = the pretraining set, {target} = the finetuning set)
SEMI_PRETRAIN = "results/semisup/{dataset}/pretrain/{augment}/k{s}/s{seed}"
SEMI_FINETUNE = "results/semisup/{dataset}/finetune/{target_set}/{augment}/k{s}/s{seed}"
# Study 3: supervised recipe
LR_FIND = "results/recipe/{dataset}/lr_find"
RECIPE_PRETEXT = "results/recipe/{dataset}/pretext/s{seed}"
RECIPE_TRAIN = "results/recipe/{dataset}/train/{start}_{head}/s{seed}"  # start: scratch | rotation
# Study 4: warm starting. {phase}: pretrain (on the pretrain half), warm or fresh (full set).
WS = "results/warmstart/{dataset}"
WS_OPTIM = WS + "/optim/{optimizer}/{phase}/s{seed}"   # the setup.optimizer runs are the base runs
WS_LENGTH = WS + "/length/e{epochs}/{phase}/s{seed}"
WS_TRANSITION = WS + "/transition/g{gamma}/s{seed}"
WS_STAGES = WS + "/stages/n{stages}_r{ratio}_{remedy}/s{seed}"
WS_ARCH = WS + "/arch/w{width}_d{depth}/{phase}/s{seed}"
WS_RESET = WS + "/reset/{mode}{n}/s{seed}"
WS_TUNE_PRE = WS + "/tuning/p{plr}/pretrain/s{seed}"
WS_TUNE = WS + "/tuning/p{plr}/t{tlr}/s{seed}"
WS_TUNE_FRESH = WS + "/tuning/fresh/t{tlr}/s{seed}"
WS_REMEDY = WS + "/remedy/{remedy}/s{seed}"
# Study 5: transfer. Vision: the stand-in extractor, k-per-class subsets, finetuning runs.
TRANSFER_STANDIN = "results/transfer/standin/{dataset}"
TRANSFER_SUBSET = "data/subsets/transfer/{dataset}/k{k}_s{seed}.pt"
TRANSFER = "results/transfer/{dataset}/{head}_{mode}/k{k}/s{seed}"
# Language: the corpus and NLI set, the LM, NLI on its encoder and with BERT.
CORPUS = "data/text/corpus.json"
NLI_DATA = "data/text/nli.json"
LM = "results/nlp/lm/s{seed}"
NLI_LM = "results/nlp/nli_lm/{variant}/s{seed}"
NLI_BERT = "results/nlp/nli_bert/{variant}/s{seed}"
# Per-study tables (aggregate) and the report's inputs.
RESULTS = "results"
AGGREGATE = "results/aggregate/{study}"
SUMMARY = AGGREGATE + "/summary.csv"
CURVES = AGGREGATE + "/curves.csv"
METRICS = AGGREGATE + "/metrics.json"
PLOTS = AGGREGATE + "/plots"  # DVC plot data (csv), one folder per study
# name -> md5 of every plots/*.csv: the report's declared input. A folder's time cannot be
# checksummed, so a folder input would rerun the report after every `dvc checkout`.
PLOTS_INDEX = AGGREGATE + "/plots.json"
# Checkpoints are not outputs: both runners delete a failed job's outputs, which would
# throw away the state a resumed run needs.
CHECKPOINT = "checkpoints/{run}.pt"


def checkpoint(run_dir: str) -> str:
    return CHECKPOINT.format(run=run_dir)
