# Study 5a: vision transfer. ResNet-18 (ImageNet weights, or offline the stand-in this file
# trains) under a finetune model on k labels per class, frozen or unfrozen after a while.
STANDIN = paths.TRANSFER_STANDIN.format(dataset=config["transfer"]["standin"]["dataset"])


rule transfer_standin:
    input:
        data=paths.PREPARED.format(dataset=config["transfer"]["standin"]["dataset"]),
    output:
        model=STANDIN + "/model.pt",
        metrics=STANDIN + "/metrics.json",
        live=directory(STANDIN + "/live"),
    params:
        values=lambda w: stage_params("transfer-standin"),
        ckpt=paths.checkpoint(STANDIN),
    log:
        "logs/" + STANDIN + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab transfer-standin --params params.yaml --data {input.data} --checkpoint {params.ckpt} "
        "--out " + STANDIN + " --log {log}"


rule transfer_subsample:
    input:
        paths.PREPARED,
    output:
        paths.TRANSFER_SUBSET,
    log:
        "logs/" + paths.TRANSFER_SUBSET + ".log",
    resources:
        **res("light"),
    shell:
        "transferlab subsample --data {input} --per-class {wildcards.k} --seed {wildcards.seed} "
        "--out {output} --log {log}"


rule transfer_finetune:
    input:
        data=paths.TRANSFER_SUBSET,
        standin=STANDIN + "/model.pt",
    output:
        metrics=paths.TRANSFER + "/metrics.json",
        live=directory(paths.TRANSFER + "/live"),
    params:
        values=lambda w: stage_params("transfer-finetune"),
        out=lambda w: paths.TRANSFER.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.TRANSFER.format(**w)),
    log:
        "logs/" + paths.TRANSFER + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab transfer-finetune --params params.yaml --data {input.data} --standin {input.standin} "
        "--head {wildcards.head} --mode {wildcards.mode} --seed {wildcards.seed} --checkpoint {params.ckpt} "
        "--out {params.out} --log {log}"
