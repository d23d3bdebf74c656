# Study 2: semi-supervised. Pretrain on s examples per class (with an augmentation), then a
# new head per target data set on the frozen extractor.


rule semisup_pretrain:
    input:
        data=paths.PREPARED,
    output:
        model=paths.SEMI_PRETRAIN + "/model.pt",
        metrics=paths.SEMI_PRETRAIN + "/metrics.json",
        live=directory(paths.SEMI_PRETRAIN + "/live"),
    params:
        values=lambda w: stage_params("semisup-pretrain"),
        out=lambda w: paths.SEMI_PRETRAIN.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.SEMI_PRETRAIN.format(**w)),
    log:
        "logs/" + paths.SEMI_PRETRAIN + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab semisup-pretrain --params params.yaml --data {input.data} --augment {wildcards.augment} "
        "--per-class {wildcards.s} --seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"


rule semisup_finetune:
    input:
        data=paths.PREPARED.replace("{dataset}", "{target_set}"),
        init=paths.SEMI_PRETRAIN + "/model.pt",
    output:
        metrics=paths.SEMI_FINETUNE + "/metrics.json",
        live=directory(paths.SEMI_FINETUNE + "/live"),
    params:
        values=lambda w: stage_params("semisup-finetune"),
        out=lambda w: paths.SEMI_FINETUNE.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.SEMI_FINETUNE.format(**w)),
    log:
        "logs/" + paths.SEMI_FINETUNE + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab semisup-finetune --params params.yaml --data {input.data} --init {input.init} "
        "--seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"
