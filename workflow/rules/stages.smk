# Rendered by `transferlab snakemake_rules` from the stage declarations (@stage in each study's
# folder, src/transferlab/studies/<study>/, the studies listed in transferlab.catalog, and in
# src/transferlab/stages/; `transferlab.registry` collects them): edit those and render again;
# tests fail when this file differs from a fresh rendering.
# rule name = DVC stage = `transferlab` command = function. Each rule's inputs include the source
# files the stage runs, so a code change reruns exactly its dependents (as in dvc.yaml). What
# params.yaml decides is filled in by the stage_* helpers of rules/common.smk.


# prepare: Build data/prepared/<name>.pt from the source named in params.datasets.<name>.
# declared in src/transferlab/stages/data.py; its command:
#   transferlab prepare --params params.yaml --dataset {dataset} --out data/prepared/{dataset}.pt --log
#     logs/data/prepared/{dataset}.log
rule prepare:
    input:
        **stage_inputs("prepare"),
    output:
        stage_outputs("prepare"),
    log:
        stage_log("prepare"),
    wildcard_constraints:
        **stage_constraints("prepare"),
    priority: 2
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("prepare"),
        command=stage_command("prepare"),
    shell:
        "{params.command}"


# subsample: The pretext study's downstream labels: labels_per_class per class, per seed.
# declared in src/transferlab/stages/data.py; its command:
#   transferlab subsample --params params.yaml --data data/prepared/{dataset}.pt --dataset {dataset} --out
#     data/subsets/{dataset}/k${pretext.labels_per_class} --log
#     logs/data/subsets/{dataset}/k${pretext.labels_per_class}.log
rule subsample:
    input:
        **stage_inputs("subsample"),
    output:
        stage_outputs("subsample"),
    log:
        stage_log("subsample"),
    wildcard_constraints:
        **stage_constraints("subsample"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("subsample"),
        command=stage_command("subsample"),
    shell:
        "{params.command}"


# transfer_subsample: The vision transfer study's few labels: k per class, per seed.
# declared in src/transferlab/stages/data.py; its command:
#   transferlab transfer_subsample --params params.yaml --data data/prepared/${transfer.dataset}.pt --k {k} --out
#     data/subsets/transfer/${transfer.dataset}/k{k} --log logs/data/subsets/transfer/${transfer.dataset}/k{k}.log
rule transfer_subsample:
    input:
        **stage_inputs("transfer_subsample"),
    output:
        stage_outputs("transfer_subsample"),
    log:
        stage_log("transfer_subsample"),
    wildcard_constraints:
        **stage_constraints("transfer_subsample"),
    priority: 1
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("transfer_subsample"),
        command=stage_command("transfer_subsample"),
    shell:
        "{params.command}"


# pretrain: Pretrain a model on a pretext target, every seed.
# declared in src/transferlab/studies/pretext/stages.py; its command:
#   transferlab pretrain --params params.yaml --data data/prepared/{dataset}.pt --dataset {dataset} --target
#     {target} --checkpoint checkpoints/results/pretext/{dataset}/pretrain/{target} --out
#     results/pretext/{dataset}/pretrain/{target} --log logs/results/pretext/{dataset}/pretrain/{target}.log
rule pretrain:
    input:
        **stage_inputs("pretrain"),
    output:
        stage_outputs("pretrain"),
    log:
        stage_log("pretrain"),
    wildcard_constraints:
        **stage_constraints("pretrain"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("pretrain"),
        command=stage_command("pretrain"),
    shell:
        "{params.command}"


# finetune: Finetune on the downstream labels from the extractor pretrained on a pretext target: every
# frozen-blocks setting and seed.
# declared in src/transferlab/studies/pretext/stages.py; its command:
#   transferlab finetune --params params.yaml --data data/subsets/{dataset}/k${pretext.labels_per_class} --init
#     results/pretext/{dataset}/pretrain/{target} --dataset {dataset} --target {target} --checkpoint
#     checkpoints/results/pretext/{dataset}/finetune/{target} --out results/pretext/{dataset}/finetune/{target}
#     --log logs/results/pretext/{dataset}/finetune/{target}.log
rule finetune:
    input:
        **stage_inputs("finetune"),
    output:
        stage_outputs("finetune"),
    log:
        stage_log("finetune"),
    wildcard_constraints:
        **stage_constraints("finetune"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("finetune"),
        command=stage_command("finetune"),
    shell:
        "{params.command}"


# scratch: The from-scratch baseline: the same finetuning budget, no pretrained extractor.
# declared in src/transferlab/studies/pretext/stages.py; its command:
#   transferlab scratch --params params.yaml --data data/subsets/{dataset}/k${pretext.labels_per_class} --dataset
#     {dataset} --checkpoint checkpoints/results/pretext/{dataset}/finetune/scratch --out
#     results/pretext/{dataset}/finetune/scratch --log logs/results/pretext/{dataset}/finetune/scratch.log
rule scratch:
    input:
        **stage_inputs("scratch"),
    output:
        stage_outputs("scratch"),
    log:
        stage_log("scratch"),
    wildcard_constraints:
        **stage_constraints("scratch"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("scratch"),
        command=stage_command("scratch"),
    shell:
        "{params.command}"


# pretext_references: References for the pretext study's scratch baseline: its labels per class, each seed's
# draw.
# declared in src/transferlab/studies/pretext/references.py; its command:
#   transferlab pretext_references --params params.yaml --data data/prepared/{dataset}.pt --dataset {dataset}
#     --out results/references/pretext/{dataset}.csv --log logs/results/references/pretext/{dataset}.log
rule pretext_references:
    input:
        **stage_inputs("pretext_references"),
    output:
        stage_outputs("pretext_references"),
    log:
        stage_log("pretext_references"),
    wildcard_constraints:
        **stage_constraints("pretext_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("pretext_references"),
        command=stage_command("pretext_references"),
    shell:
        "{params.command}"


# semisup_pretrain: Semi-supervised: pretrain on s examples per class with an augmentation, every seed.
# declared in src/transferlab/studies/semisup/stages.py; its command:
#   transferlab semisup_pretrain --params params.yaml --data data/prepared/{dataset}.pt --dataset {dataset}
#     --augment {augment} --s {s} --checkpoint checkpoints/results/semisup/{dataset}/pretrain/{augment}/k{s} --out
#     results/semisup/{dataset}/pretrain/{augment}/k{s} --log
#     logs/results/semisup/{dataset}/pretrain/{augment}/k{s}.log
rule semisup_pretrain:
    input:
        **stage_inputs("semisup_pretrain"),
    output:
        stage_outputs("semisup_pretrain"),
    log:
        stage_log("semisup_pretrain"),
    wildcard_constraints:
        **stage_constraints("semisup_pretrain"),
    priority: 2
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("semisup_pretrain"),
        command=stage_command("semisup_pretrain"),
    shell:
        "{params.command}"


# semisup_finetune: Semi-supervised: a new head on a target data set over each frozen extractor of the
# pretraining set (every augmentation, s and seed).
# declared in src/transferlab/studies/semisup/stages.py; its command:
#   transferlab semisup_finetune --params params.yaml --data data/prepared/{target_set}.pt --init
#     results/semisup/{dataset}/pretrain --dataset {dataset} --target-set {target_set} --checkpoint
#     checkpoints/results/semisup/{dataset}/finetune/{target_set} --out
#     results/semisup/{dataset}/finetune/{target_set} --log
#     logs/results/semisup/{dataset}/finetune/{target_set}.log
rule semisup_finetune:
    input:
        **stage_inputs("semisup_finetune"),
    output:
        stage_outputs("semisup_finetune"),
    log:
        stage_log("semisup_finetune"),
    wildcard_constraints:
        **stage_constraints("semisup_finetune"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("semisup_finetune"),
        command=stage_command("semisup_finetune"),
    shell:
        "{params.command}"


# semisup_references: References for the semi-supervised same-set head: the labelled examples per class it and
# its extractor saw (the head's draw, or the extractor's s where larger), each seed's draw.
# declared in src/transferlab/studies/semisup/references.py; its command:
#   transferlab semisup_references --params params.yaml --data data/prepared/{dataset}.pt --dataset {dataset}
#     --out results/references/semisup/{dataset}.csv --log logs/results/references/semisup/{dataset}.log
rule semisup_references:
    input:
        **stage_inputs("semisup_references"),
    output:
        stage_outputs("semisup_references"),
    log:
        stage_log("semisup_references"),
    wildcard_constraints:
        **stage_constraints("semisup_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("semisup_references"),
        command=stage_command("semisup_references"),
    shell:
        "{params.command}"


# lr_find: LR range test: exponential LR sweep, smoothed loss, chosen LR by a stated rule.
# declared in src/transferlab/studies/recipe/stages.py; its command:
#   transferlab lr_find --params params.yaml --data data/prepared/${recipe.dataset}.pt --out
#     results/recipe/${recipe.dataset}/lr_find --log logs/results/recipe/${recipe.dataset}/lr_find.log
rule lr_find:
    input:
        **stage_inputs("lr_find"),
    output:
        stage_outputs("lr_find"),
    log:
        stage_log("lr_find"),
    priority: 1
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("lr_find"),
        command=stage_command("lr_find"),
    shell:
        "{params.command}"


# recipe_pretext: Rotation pretext with a per-epoch linear probe; keeps the best-probe epoch (every seed).
# declared in src/transferlab/studies/recipe/stages.py; its command:
#   transferlab recipe_pretext --params params.yaml --data data/prepared/${recipe.dataset}.pt --checkpoint
#     checkpoints/results/recipe/${recipe.dataset}/pretext --out results/recipe/${recipe.dataset}/pretext --log
#     logs/results/recipe/${recipe.dataset}/pretext.log
rule recipe_pretext:
    input:
        **stage_inputs("recipe_pretext"),
    output:
        stage_outputs("recipe_pretext"),
    log:
        stage_log("recipe_pretext"),
    priority: 1
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("recipe_pretext"),
        command=stage_command("recipe_pretext"),
    shell:
        "{params.command}"


# recipe_scratch: Supervised recipe from scratch: warmup+cosine, best epoch on validation, EMA/Polyak averages;
# every head and seed.
# declared in src/transferlab/studies/recipe/stages.py; its command:
#   transferlab recipe_scratch --params params.yaml --data data/prepared/${recipe.dataset}.pt --lr-find
#     results/recipe/${recipe.dataset}/lr_find/lr_find.json --checkpoint
#     checkpoints/results/recipe/${recipe.dataset}/train/scratch --out
#     results/recipe/${recipe.dataset}/train/scratch --log logs/results/recipe/${recipe.dataset}/train/scratch.log
rule recipe_scratch:
    input:
        **stage_inputs("recipe_scratch"),
    output:
        stage_outputs("recipe_scratch"),
    log:
        stage_log("recipe_scratch"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("recipe_scratch"),
        command=stage_command("recipe_scratch"),
    shell:
        "{params.command}"


# recipe_rotation: Supervised recipe started from the rotation pretext's best-probe epoch; every head and seed.
# declared in src/transferlab/studies/recipe/stages.py; its command:
#   transferlab recipe_rotation --params params.yaml --data data/prepared/${recipe.dataset}.pt --lr-find
#     results/recipe/${recipe.dataset}/lr_find/lr_find.json --init results/recipe/${recipe.dataset}/pretext
#     --checkpoint checkpoints/results/recipe/${recipe.dataset}/train/rotation --out
#     results/recipe/${recipe.dataset}/train/rotation --log
#     logs/results/recipe/${recipe.dataset}/train/rotation.log
rule recipe_rotation:
    input:
        **stage_inputs("recipe_rotation"),
    output:
        stage_outputs("recipe_rotation"),
    log:
        stage_log("recipe_rotation"),
    priority: 1
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("recipe_rotation"),
        command=stage_command("recipe_rotation"),
    shell:
        "{params.command}"


# recipe_references: References for the recipe's scratch baseline: the whole training split.
# declared in src/transferlab/studies/recipe/references.py; its command:
#   transferlab recipe_references --params params.yaml --data data/prepared/${recipe.dataset}.pt --out
#     results/references/recipe.csv --log logs/results/references/recipe.log
rule recipe_references:
    input:
        **stage_inputs("recipe_references"),
    output:
        stage_outputs("recipe_references"),
    log:
        stage_log("recipe_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("recipe_references"),
        command=stage_command("recipe_references"),
    shell:
        "{params.command}"


# ws_optim: Warm vs fresh with one optimizer: pretrain on the half, then warm and fresh on the full set, every
# seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_optim --params params.yaml --data data/prepared/${warmstart.dataset}.pt --optimizer {optimizer}
#     --checkpoint checkpoints/results/warmstart/${warmstart.dataset}/optim/{optimizer} --out
#     results/warmstart/${warmstart.dataset}/optim/{optimizer} --log
#     logs/results/warmstart/${warmstart.dataset}/optim/{optimizer}.log
rule ws_optim:
    input:
        **stage_inputs("ws_optim"),
    output:
        stage_outputs("ws_optim"),
    log:
        stage_log("ws_optim"),
    wildcard_constraints:
        **stage_constraints("ws_optim"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_optim"),
        command=stage_command("ws_optim"),
    shell:
        "{params.command}"


# ws_length: Warm starts after a given number of pretraining epochs, every seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_length --params params.yaml --data data/prepared/${warmstart.dataset}.pt --epochs {epochs}
#     --checkpoint checkpoints/results/warmstart/${warmstart.dataset}/length/e{epochs} --out
#     results/warmstart/${warmstart.dataset}/length/e{epochs} --log
#     logs/results/warmstart/${warmstart.dataset}/length/e{epochs}.log
rule ws_length:
    input:
        **stage_inputs("ws_length"),
    output:
        stage_outputs("ws_length"),
    log:
        stage_log("ws_length"),
    wildcard_constraints:
        **stage_constraints("ws_length"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_length"),
        command=stage_command("ws_length"),
    shell:
        "{params.command}"


# ws_transition: Smooth transition from the pretrain half to the full set, p(n) = 1 - gamma^(50 n / N): every
# gamma and seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_transition --params params.yaml --data data/prepared/${warmstart.dataset}.pt --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/transition --out
#     results/warmstart/${warmstart.dataset}/transition --log
#     logs/results/warmstart/${warmstart.dataset}/transition.log
rule ws_transition:
    input:
        **stage_inputs("ws_transition"),
    output:
        stage_outputs("ws_transition"),
    log:
        stage_log("ws_transition"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_transition"),
        command=stage_command("ws_transition"),
    shell:
        "{params.command}"


# ws_stages: Many stages: data arriving in chunks, each stage trained to a train accuracy, then the full set.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_stages --params params.yaml --data data/prepared/${warmstart.dataset}.pt --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/stages --out
#     results/warmstart/${warmstart.dataset}/stages --log logs/results/warmstart/${warmstart.dataset}/stages.log
rule ws_stages:
    input:
        **stage_inputs("ws_stages"),
    output:
        stage_outputs("ws_stages"),
    log:
        stage_log("ws_stages"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_stages"),
        command=stage_command("ws_stages"),
    shell:
        "{params.command}"


# ws_arch: Warm vs fresh for one architecture, every seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_arch --params params.yaml --data data/prepared/${warmstart.dataset}.pt --width {width} --depth
#     {depth} --checkpoint checkpoints/results/warmstart/${warmstart.dataset}/arch/w{width}_d{depth} --out
#     results/warmstart/${warmstart.dataset}/arch/w{width}_d{depth} --log
#     logs/results/warmstart/${warmstart.dataset}/arch/w{width}_d{depth}.log
rule ws_arch:
    input:
        **stage_inputs("ws_arch"),
    output:
        stage_outputs("ws_arch"),
    log:
        stage_log("ws_arch"),
    wildcard_constraints:
        **stage_constraints("ws_arch"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_arch"),
        command=stage_command("ws_arch"),
    shell:
        "{params.command}"


# ws_reset: Warm starts from the base pretrained model with layers re-drawn first: every selection and seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_reset --params params.yaml --data data/prepared/${warmstart.dataset}.pt --init
#     results/warmstart/${warmstart.dataset}/optim/${warmstart.setup.optimizer} --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/reset --out results/warmstart/${warmstart.dataset}/reset
#     --log logs/results/warmstart/${warmstart.dataset}/reset.log
rule ws_reset:
    input:
        **stage_inputs("ws_reset"),
    output:
        stage_outputs("ws_reset"),
    log:
        stage_log("ws_reset"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_reset"),
        command=stage_command("ws_reset"),
    shell:
        "{params.command}"


# ws_tune_pretrain: Pretraining at one constant LR, every seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_tune_pretrain --params params.yaml --data data/prepared/${warmstart.dataset}.pt --plr {plr}
#     --checkpoint checkpoints/results/warmstart/${warmstart.dataset}/tuning/p{plr}/pretrain --out
#     results/warmstart/${warmstart.dataset}/tuning/p{plr}/pretrain --log
#     logs/results/warmstart/${warmstart.dataset}/tuning/p{plr}/pretrain.log
rule ws_tune_pretrain:
    input:
        **stage_inputs("ws_tune_pretrain"),
    output:
        stage_outputs("ws_tune_pretrain"),
    log:
        stage_log("ws_tune_pretrain"),
    wildcard_constraints:
        **stage_constraints("ws_tune_pretrain"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_tune_pretrain"),
        command=stage_command("ws_tune_pretrain"),
    shell:
        "{params.command}"


# ws_tune: Warm starts from one pretraining LR's models at every tuning LR, every seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_tune --params params.yaml --data data/prepared/${warmstart.dataset}.pt --init
#     results/warmstart/${warmstart.dataset}/tuning/p{plr}/pretrain --plr {plr} --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/tuning/p{plr}/warm --out
#     results/warmstart/${warmstart.dataset}/tuning/p{plr}/warm --log
#     logs/results/warmstart/${warmstart.dataset}/tuning/p{plr}/warm.log
rule ws_tune:
    input:
        **stage_inputs("ws_tune"),
    output:
        stage_outputs("ws_tune"),
    log:
        stage_log("ws_tune"),
    wildcard_constraints:
        **stage_constraints("ws_tune"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_tune"),
        command=stage_command("ws_tune"),
    shell:
        "{params.command}"


# ws_tune_fresh: Fresh runs at every tuning LR, every seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_tune_fresh --params params.yaml --data data/prepared/${warmstart.dataset}.pt --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/tuning/fresh --out
#     results/warmstart/${warmstart.dataset}/tuning/fresh --log
#     logs/results/warmstart/${warmstart.dataset}/tuning/fresh.log
rule ws_tune_fresh:
    input:
        **stage_inputs("ws_tune_fresh"),
    output:
        stage_outputs("ws_tune_fresh"),
    log:
        stage_log("ws_tune_fresh"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_tune_fresh"),
        command=stage_command("ws_tune_fresh"),
    shell:
        "{params.command}"


# ws_remedy: Warm starts from the base pretrained model with a remedy: every remedy and seed.
# declared in src/transferlab/studies/warmstart/stages.py; its command:
#   transferlab ws_remedy --params params.yaml --data data/prepared/${warmstart.dataset}.pt --init
#     results/warmstart/${warmstart.dataset}/optim/${warmstart.setup.optimizer} --checkpoint
#     checkpoints/results/warmstart/${warmstart.dataset}/remedy --out
#     results/warmstart/${warmstart.dataset}/remedy --log logs/results/warmstart/${warmstart.dataset}/remedy.log
rule ws_remedy:
    input:
        **stage_inputs("ws_remedy"),
    output:
        stage_outputs("ws_remedy"),
    log:
        stage_log("ws_remedy"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("ws_remedy"),
        command=stage_command("ws_remedy"),
    shell:
        "{params.command}"


# warmstart_references: References for the warm-start study's fresh runs: the whole training split.
# declared in src/transferlab/studies/warmstart/references.py; its command:
#   transferlab warmstart_references --params params.yaml --data data/prepared/${warmstart.dataset}.pt --out
#     results/references/warmstart.csv --log logs/results/references/warmstart.log
rule warmstart_references:
    input:
        **stage_inputs("warmstart_references"),
    output:
        stage_outputs("warmstart_references"),
    log:
        stage_log("warmstart_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("warmstart_references"),
        command=stage_command("warmstart_references"),
    shell:
        "{params.command}"


# transfer_standin: Train the stand-in ResNet-18 extractor (torchvision architecture) on an embedded data set.
# declared in src/transferlab/studies/transfer/stages.py; its command:
#   transferlab transfer_standin --params params.yaml --data data/prepared/${transfer.standin.dataset}.pt
#     --checkpoint checkpoints/results/transfer/standin/${transfer.standin.dataset} --out
#     results/transfer/standin/${transfer.standin.dataset} --log
#     logs/results/transfer/standin/${transfer.standin.dataset}.log
rule transfer_standin:
    input:
        **stage_inputs("transfer_standin"),
    output:
        stage_outputs("transfer_standin"),
    log:
        stage_log("transfer_standin"),
    priority: 1
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("transfer_standin"),
        command=stage_command("transfer_standin"),
    shell:
        "{params.command}"


# transfer_finetune: Few-label transfer from ResNet-18 (ImageNet weights or the stand-in): every finetune model,
# mode and seed on k labels per class.
# declared in src/transferlab/studies/transfer/stages.py; its command:
#   transferlab transfer_finetune --params params.yaml --data data/subsets/transfer/${transfer.dataset}/k{k}
#     --standin results/transfer/standin/${transfer.standin.dataset}/model.pt --k {k} --checkpoint
#     checkpoints/results/transfer/${transfer.dataset}/k{k} --out results/transfer/${transfer.dataset}/k{k} --log
#     logs/results/transfer/${transfer.dataset}/k{k}.log
rule transfer_finetune:
    input:
        **stage_inputs("transfer_finetune"),
    output:
        stage_outputs("transfer_finetune"),
    log:
        stage_log("transfer_finetune"),
    wildcard_constraints:
        **stage_constraints("transfer_finetune"),
    priority: 1
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("transfer_finetune"),
        command=stage_command("transfer_finetune"),
    shell:
        "{params.command}"


# standin_references: References for the stand-in extractor on its own task: the whole training split.
# declared in src/transferlab/studies/transfer/references.py; its command:
#   transferlab standin_references --params params.yaml --data data/prepared/${transfer.standin.dataset}.pt --out
#     results/references/transfer/standin.csv --log logs/results/references/transfer/standin.log
rule standin_references:
    input:
        **stage_inputs("standin_references"),
    output:
        stage_outputs("standin_references"),
    log:
        stage_log("standin_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("standin_references"),
        command=stage_command("standin_references"),
    shell:
        "{params.command}"


# transfer_references: References for the frozen extractor with its head: the raw pixels of the same k labels
# per class (no extractor at all), each seed's draw.
# declared in src/transferlab/studies/transfer/references.py; its command:
#   transferlab transfer_references --params params.yaml --data data/prepared/${transfer.dataset}.pt --k {k} --out
#     results/references/transfer/k{k}.csv --log logs/results/references/transfer/k{k}.log
rule transfer_references:
    input:
        **stage_inputs("transfer_references"),
    output:
        stage_outputs("transfer_references"),
    log:
        stage_log("transfer_references"),
    wildcard_constraints:
        **stage_constraints("transfer_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("transfer_references"),
        command=stage_command("transfer_references"),
    shell:
        "{params.command}"


# corpus: Build the LM corpus (text.corpus).
# declared in src/transferlab/studies/nlp/data_stages.py; its command:
#   transferlab corpus --params params.yaml --out data/text/corpus.json --log logs/data/text/corpus.log
rule corpus:
    input:
        **stage_inputs("corpus"),
    output:
        stage_outputs("corpus"),
    log:
        stage_log("corpus"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("corpus"),
        command=stage_command("corpus"),
    shell:
        "{params.command}"


# nli_data: Build the NLI set (text.nli).
# declared in src/transferlab/studies/nlp/data_stages.py; its command:
#   transferlab nli_data --params params.yaml --out data/text/nli.json --log logs/data/text/nli.log
rule nli_data:
    input:
        **stage_inputs("nli_data"),
    output:
        stage_outputs("nli_data"),
    log:
        stage_log("nli_data"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("nli_data"),
        command=stage_command("nli_data"),
    shell:
        "{params.command}"


# lm: Train the RNN language model (truncated BPTT), every seed.
# declared in src/transferlab/studies/nlp/stages.py; its command:
#   transferlab lm --params params.yaml --data data/text/corpus.json --checkpoint checkpoints/results/nlp/lm --out
#     results/nlp/lm --log logs/results/nlp/lm.log
rule lm:
    input:
        **stage_inputs("lm"),
    output:
        stage_outputs("lm"),
    log:
        stage_log("lm"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("lm"),
        command=stage_command("lm"),
    shell:
        "{params.command}"


# nli_lm: MNLI with the LM's encoder ([u, v, |u-v|, u*v] into an MLP): every variant and seed.
# declared in src/transferlab/studies/nlp/stages.py; its command:
#   transferlab nli_lm --params params.yaml --data data/text/nli.json --lm results/nlp/lm --checkpoint
#     checkpoints/results/nlp/nli_lm --out results/nlp/nli_lm --log logs/results/nlp/nli_lm.log
rule nli_lm:
    input:
        **stage_inputs("nli_lm"),
    output:
        stage_outputs("nli_lm"),
    log:
        stage_log("nli_lm"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("nli_lm"),
        command=stage_command("nli_lm"),
    shell:
        "{params.command}"


# nli_bert: MNLI with transformers BERT (feature extractor, finetuned, or from scratch): every variant and seed.
# declared in src/transferlab/studies/nlp/stages.py; its command:
#   transferlab nli_bert --params params.yaml --data data/text/nli.json --checkpoint
#     checkpoints/results/nlp/nli_bert --out results/nlp/nli_bert --log logs/results/nlp/nli_bert.log
rule nli_bert:
    input:
        **stage_inputs("nli_bert"),
    output:
        stage_outputs("nli_bert"),
    log:
        stage_log("nli_bert"),
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    params:
        values=stage_values("nli_bert"),
        command=stage_command("nli_bert"),
    shell:
        "{params.command}"


# lm_references: The n-gram reference for the LM: an interpolated Kneser-Ney trigram on the LM's token stream
# (its vocabulary, built as the lm stage builds it), test perplexity.
# declared in src/transferlab/studies/nlp/references.py; its command:
#   transferlab lm_references --params params.yaml --data data/text/corpus.json --out
#     results/references/nlp/lm.csv --log logs/results/references/nlp/lm.log
rule lm_references:
    input:
        **stage_inputs("lm_references"),
    output:
        stage_outputs("lm_references"),
    log:
        stage_log("lm_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("lm_references"),
        command=stage_command("lm_references"),
    shell:
        "{params.command}"


# nli_references: The bag-of-words reference for NLI: logistic regression on the pair's words, scored on the
# matched and mismatched validation splits (the NLI runs' test/acc and test_mismatched/acc).
# declared in src/transferlab/studies/nlp/references.py; its command:
#   transferlab nli_references --params params.yaml --data data/text/nli.json --out results/references/nlp/nli.csv
#     --log logs/results/references/nlp/nli.log
rule nli_references:
    input:
        **stage_inputs("nli_references"),
    output:
        stage_outputs("nli_references"),
    log:
        stage_log("nli_references"),
    group:
        "light"
    threads: 1
    resources:
        **res("light"),
    params:
        values=stage_values("nli_references"),
        command=stage_command("nli_references"),
    shell:
        "{params.command}"


# aggregate: Gather one study's run metrics into tidy tables (summary.csv, curves.csv, tables/), its DVC metrics
# (results/metrics/<study>.json) and plot data (results/plots/<study>/).
# declared in src/transferlab/stages/aggregate.py; its command:
#   transferlab aggregate --params params.yaml --study {study} --out results/aggregate/{study} --log
#     logs/results/aggregate/{study}.log
rule aggregate:
    input:
        **stage_inputs("aggregate"),
        gathered=stage_gathered("aggregate"),
    output:
        stage_outputs("aggregate"),
    log:
        stage_log("aggregate"),
    wildcard_constraints:
        **stage_constraints("aggregate"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("aggregate"),
        command=stage_command("aggregate"),
    shell:
        "{params.command}"


# references: Gather every reference job's rows into results/references.csv (one row per baseline setting,
# reference, metric and seed) and the DVC metric results/metrics/references.json.
# declared in src/transferlab/stages/references.py; its command:
#   transferlab references --params params.yaml --out results/references_table --log
#     logs/results/references_table.log
rule references:
    input:
        **stage_inputs("references"),
        gathered=stage_gathered("references"),
    output:
        stage_outputs("references"),
    log:
        stage_log("references"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("references"),
        command=stage_command("references"),
    shell:
        "{params.command}"


# scorecard: Test every source claim against the runs: results/scorecard.csv (one row per claim and setting:
# effect, 95% interval over seeds, n, per-arm usable/diverged/capped seeds, verdict after Holm within its family
# and unadjusted), results/baselines.csv (each claim's baseline against its competence floor) and
# results/metrics/scorecard.json.
# declared in src/transferlab/stages/scorecard.py; its command:
#   transferlab scorecard --params params.yaml --out results/scorecard --log logs/results/scorecard.log
rule scorecard:
    input:
        **stage_inputs("scorecard"),
    output:
        stage_outputs("scorecard"),
    log:
        stage_log("scorecard"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("scorecard"),
        command=stage_command("scorecard"),
    shell:
        "{params.command}"


# report: Make the figures and the Markdown report (the scorecard first) from every study's tables (--results:
# one <study>/ folder of them each) and results/scorecard.csv.
# declared in src/transferlab/stages/report.py; its command:
#   transferlab report --results results/aggregate --out reports --log logs/reports.log
rule report:
    input:
        **stage_inputs("report"),
    output:
        stage_outputs("report"),
    log:
        stage_log("report"),
    localrule: True
    threads: 1
    resources:
        **res("local"),
    params:
        values=stage_values("report"),
        command=stage_command("report"),
    shell:
        "{params.command}"
