# Study 1: pretext pretraining -> finetuning, against a from-scratch baseline.
K = config["pretext"]["labels_per_class"]
SCRATCH = paths.FINETUNE.replace("{init}_f{frozen}", "scratch_f0")


rule pretrain:
    input:
        data=paths.PREPARED,
    output:
        model=paths.PRETRAIN + "/model.pt",
        metrics=paths.PRETRAIN + "/metrics.json",
        live=directory(paths.PRETRAIN + "/live"),
    params:
        values=lambda w: stage_params("pretrain"),
        out=lambda w: paths.PRETRAIN.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.PRETRAIN.format(**w)),
    log:
        "logs/" + paths.PRETRAIN + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab pretrain --params params.yaml --data {input.data} --target {wildcards.target} "
        "--seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"


rule finetune:
    input:
        data=paths.SUBSET.replace("{k}", str(K)),
        init=paths.PRETRAIN.replace("{target}", "{init}") + "/model.pt",
    output:
        model=paths.FINETUNE + "/model.pt",
        metrics=paths.FINETUNE + "/metrics.json",
        live=directory(paths.FINETUNE + "/live"),
    params:
        values=lambda w: stage_params("finetune"),
        out=lambda w: paths.FINETUNE.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.FINETUNE.format(**w)),
    log:
        "logs/" + paths.FINETUNE + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab finetune --params params.yaml --data {input.data} --init {input.init} "
        "--frozen {wildcards.frozen} --seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} "
        "--log {log}"


rule scratch:
    input:
        data=paths.SUBSET.replace("{k}", str(K)),
    output:
        model=SCRATCH + "/model.pt",
        metrics=SCRATCH + "/metrics.json",
        live=directory(SCRATCH + "/live"),
    params:
        values=lambda w: stage_params("finetune"),
        out=lambda w: SCRATCH.format(**w),
        ckpt=lambda w: paths.checkpoint(SCRATCH.format(**w)),
    log:
        "logs/" + SCRATCH + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab finetune --params params.yaml --data {input.data} --seed {wildcards.seed} "
        "--checkpoint {params.ckpt} --out {params.out} --log {log}"
