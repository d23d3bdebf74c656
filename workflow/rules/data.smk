rule prepare:
    output:
        paths.PREPARED,
    params:
        values=lambda w: stage_params("prepare", dataset=w.dataset),
    log:
        "logs/prepare/{dataset}.log",
    resources:
        **res("light"),
    shell:
        "transferlab prepare --params params.yaml --dataset {wildcards.dataset} --out {output} --log {log}"


rule subsample:
    input:
        paths.PREPARED,
    output:
        paths.SUBSET,
    log:
        "logs/subsample/{dataset}/k{k}_s{seed}.log",
    resources:
        **res("light"),
    shell:
        "transferlab subsample --data {input} --per-class {wildcards.k} --seed {wildcards.seed} "
        "--out {output} --log {log}"
