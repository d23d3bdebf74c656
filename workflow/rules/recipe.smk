# Study 3: the supervised recipe. LR finder -> training (from scratch, or from the rotation
# pretext's best-probe epoch), each with a random or a logistic-regression head.
FROM_SCRATCH = paths.RECIPE_TRAIN.replace("{start}", "scratch")
FROM_ROTATION = paths.RECIPE_TRAIN.replace("{start}", "rotation")
TRAIN_OUTPUTS = ["/model.pt", "/metrics.json"]


rule lr_find:
    input:
        data=paths.PREPARED,
    output:
        paths.LR_FIND + "/lr_find.json",
    params:
        values=lambda w: stage_params("lr-find"),
        out=lambda w: paths.LR_FIND.format(**w),
    log:
        "logs/" + paths.LR_FIND + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab lr-find --params params.yaml --data {input.data} --out {params.out} --log {log}"


rule recipe_pretext:
    input:
        data=paths.PREPARED,
    output:
        model=paths.RECIPE_PRETEXT + "/model.pt",
        metrics=paths.RECIPE_PRETEXT + "/metrics.json",
        confusion=paths.RECIPE_PRETEXT + "/confusion.csv",
        live=directory(paths.RECIPE_PRETEXT + "/live"),
    params:
        values=lambda w: stage_params("recipe-pretext"),
        out=lambda w: paths.RECIPE_PRETEXT.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.RECIPE_PRETEXT.format(**w)),
    log:
        "logs/" + paths.RECIPE_PRETEXT + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab recipe-pretext --params params.yaml --data {input.data} --seed {wildcards.seed} "
        "--checkpoint {params.ckpt} --out {params.out} --log {log}"


rule recipe_scratch:
    input:
        data=paths.PREPARED,
        lr=paths.LR_FIND + "/lr_find.json",
    output:
        *[FROM_SCRATCH + f for f in TRAIN_OUTPUTS],
        live=directory(FROM_SCRATCH + "/live"),
    params:
        values=lambda w: stage_params("recipe-train"),
        out=lambda w: FROM_SCRATCH.format(**w),
        ckpt=lambda w: paths.checkpoint(FROM_SCRATCH.format(**w)),
    log:
        "logs/" + FROM_SCRATCH + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab recipe-train --params params.yaml --data {input.data} --lr-find {input.lr} "
        "--head {wildcards.head} --seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"


rule recipe_rotation:
    input:
        data=paths.PREPARED,
        lr=paths.LR_FIND + "/lr_find.json",
        init=paths.RECIPE_PRETEXT + "/model.pt",
    output:
        *[FROM_ROTATION + f for f in TRAIN_OUTPUTS],
        live=directory(FROM_ROTATION + "/live"),
    params:
        values=lambda w: stage_params("recipe-train"),
        out=lambda w: FROM_ROTATION.format(**w),
        ckpt=lambda w: paths.checkpoint(FROM_ROTATION.format(**w)),
    log:
        "logs/" + FROM_ROTATION + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab recipe-train --params params.yaml --data {input.data} --lr-find {input.lr} "
        "--init {input.init} --head {wildcards.head} --seed {wildcards.seed} --checkpoint {params.ckpt} "
        "--out {params.out} --log {log}"
