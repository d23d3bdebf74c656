# Study 5b: language. Corpus and NLI set -> RNN LM -> NLI on its encoder; NLI with BERT.


rule corpus:
    output:
        paths.CORPUS,
    params:
        values=lambda w: stage_params("corpus"),
    log:
        "logs/text/corpus.log",
    resources:
        **res("light"),
    shell:
        "transferlab corpus --params params.yaml --out {output} --log {log}"


rule nli_data:
    output:
        paths.NLI_DATA,
    params:
        values=lambda w: stage_params("nli-data"),
    log:
        "logs/text/nli.log",
    resources:
        **res("light"),
    shell:
        "transferlab nli-data --params params.yaml --out {output} --log {log}"


rule lm:
    input:
        data=paths.CORPUS,
    output:
        model=paths.LM + "/model.pt",
        metrics=paths.LM + "/metrics.json",
        live=directory(paths.LM + "/live"),
    params:
        values=lambda w: stage_params("lm"),
        out=lambda w: paths.LM.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.LM.format(**w)),
    log:
        "logs/" + paths.LM + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab lm --params params.yaml --data {input.data} --seed {wildcards.seed} --checkpoint {params.ckpt} "
        "--out {params.out} --log {log}"


rule nli_lm:
    input:
        data=paths.NLI_DATA,
        lm=paths.LM + "/model.pt",
    output:
        metrics=paths.NLI_LM + "/metrics.json",
        live=directory(paths.NLI_LM + "/live"),
    params:
        values=lambda w: stage_params("nli-lm"),
        out=lambda w: paths.NLI_LM.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.NLI_LM.format(**w)),
    log:
        "logs/" + paths.NLI_LM + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab nli-lm --params params.yaml --data {input.data} --lm {input.lm} --variant {wildcards.variant} "
        "--seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"


rule nli_bert:
    input:
        data=paths.NLI_DATA,
    output:
        metrics=paths.NLI_BERT + "/metrics.json",
        live=directory(paths.NLI_BERT + "/live"),
    params:
        values=lambda w: stage_params("nli-bert"),
        out=lambda w: paths.NLI_BERT.format(**w),
        ckpt=lambda w: paths.checkpoint(paths.NLI_BERT.format(**w)),
    log:
        "logs/" + paths.NLI_BERT + ".log",
    threads: config["resources"]["train"]["cpus"]
    resources:
        **res("train"),
    shell:
        "transferlab nli-bert --params params.yaml --data {input.data} --variant {wildcards.variant} "
        "--seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"
