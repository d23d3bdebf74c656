"""Where every run's outputs live: the templates the stage declarations and the aggregator
share. A job that trains a group of runs (seeds, and other batched axes) writes them side by
side in its folder: the path up to the first batched axis (e.g. .../pretrain/{target} for the
runs .../pretrain/{target}/s{seed})."""

PREPARED = "data/prepared/{dataset}.pt"
SUBSET = "data/subsets/{dataset}/k{k}/s{seed}.pt"
# Study 1: pretext
PRETRAIN = "results/pretext/{dataset}/pretrain/{target}/s{seed}"
# {target}: the pretext target its extractor was pretrained on
FINETUNE = "results/pretext/{dataset}/finetune/{target}/f{frozen}/s{seed}"
SCRATCH = "results/pretext/{dataset}/finetune/scratch/s{seed}"  # the from-scratch baseline
# Study 2: semi-supervised ({dataset} = the pretraining set, {target} = the finetuning set)
SEMI_PRETRAIN = "results/semisup/{dataset}/pretrain/{augment}/k{s}/s{seed}"
SEMI_FINETUNE = "results/semisup/{dataset}/finetune/{target_set}/{augment}/k{s}/s{seed}"
# Study 3: supervised recipe
LR_FIND = "results/recipe/{dataset}/lr_find"
RECIPE_PRETEXT = "results/recipe/{dataset}/pretext/s{seed}"
RECIPE_TRAIN = "results/recipe/{dataset}/train/{start}/{head}/s{seed}"  # start: scratch | rotation
# Study 4: warm starting. {phase}: pretrain (on the pretrain half), warm or fresh (full set).
WS = "results/warmstart/{dataset}"
# An arm's job trains its pretraining, warm and fresh runs seed by seed: .../s{seed}/{phase}
WS_OPTIM = WS + "/optim/{optimizer}/s{seed}/{phase}"  # the setup.optimizer runs are the base runs
WS_LENGTH = WS + "/length/e{epochs}/s{seed}/{phase}"
WS_TRANSITION = WS + "/transition/g{gamma}/s{seed}"
WS_STAGES = WS + "/stages/n{stages}_r{ratio}_{remedy}/s{seed}"
WS_ARCH = WS + "/arch/w{width}_d{depth}/s{seed}/{phase}"
WS_RESET = WS + "/reset/{mode}{n}/s{seed}"
WS_TUNE_PRE = WS + "/tuning/p{plr}/pretrain/s{seed}"
WS_TUNE = WS + "/tuning/p{plr}/warm/t{tlr}/s{seed}"
WS_TUNE_FRESH = WS + "/tuning/fresh/t{tlr}/s{seed}"
WS_REMEDY = WS + "/remedy/{remedy}/s{seed}"
# Study 5: transfer. Vision: the stand-in extractor, k-per-class subsets, finetuning runs.
TRANSFER_STANDIN = "results/transfer/standin/{dataset}"
TRANSFER_SUBSET = "data/subsets/transfer/{dataset}/k{k}/s{seed}.pt"
TRANSFER = "results/transfer/{dataset}/k{k}/{head}_{mode}/s{seed}"
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
TABLES = AGGREGATE + "/tables"  # the report's extra tables (csv)
# name -> md5 of every tables/*.csv: the report's declared input. A folder's time cannot be
# checksummed, so a folder input would rerun the report after every `dvc checkout`.
TABLES_INDEX = AGGREGATE + "/tables.json"
# What `dvc metrics`, `dvc plots` and `dvc exp show` read: small files kept in git (DVC's
# cache: false), so `dvc metrics diff HEAD` and `dvc plots diff` compare commits.
METRICS = "results/metrics/{study}.json"  # one number per arm and phase
PLOTS = "results/plots/{study}"  # long-format plot data (csv), one folder per study
# The replication scorecard: one row per claim and setting (csv, for people and the report) and
# the same numbers as a DVC metric (DVC reads metrics from JSON, YAML or TOML, not CSV).
SCORECARD = "results/scorecard.csv"
BASELINES = "results/baselines.csv"  # every claim's baseline: score, competence floor, clears it?
SCORECARD_METRICS = "results/metrics/scorecard.json"
# Reference models (transferlab.references) beside each baseline, per setting: one file per job,
# then every row in one table and a DVC metric.
REF_PRETEXT = "results/references/pretext/{dataset}.csv"
REF_SEMISUP = "results/references/semisup/{dataset}.csv"
REF_RECIPE = "results/references/recipe.csv"
REF_WARMSTART = "results/references/warmstart.csv"
REF_STANDIN = "results/references/transfer/standin.csv"
REF_TRANSFER = "results/references/transfer/k{k}.csv"
REF_LM = "results/references/nlp/lm.csv"
REF_NLI = "results/references/nlp/nli.csv"
REFERENCES = "results/references.csv"
REFERENCES_METRICS = "results/metrics/references.json"
