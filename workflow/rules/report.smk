# Per-study tables, then one report over all studies.
FIGURES = {  # figure -> report category (captions: workflow/report/<figure>.rst)
    "pretext_curves": "Study 1: pretext",
    "pretext_accuracy": "Study 1: pretext",
    "pretext_gap": "Study 1: pretext",
    "semisup_accuracy": "Study 2: semi-supervised",
    "recipe_lr_find": "Study 3: supervised recipe",
    "recipe_averaging": "Study 3: supervised recipe",
    "recipe_arms": "Study 3: supervised recipe",
    "recipe_probe": "Study 3: supervised recipe",
    "recipe_confusion": "Study 3: supervised recipe",
    **{f"ws_{x}": "Study 4: warm starting" for x in ("optimizers", "length", "transition", "stages", "width_depth",
                                                    "resets", "tuning", "remedies")},
    "transfer_accuracy": "Study 5a: vision transfer",
    "transfer_curves": "Study 5a: vision transfer",
    "nlp_perplexity": "Study 5b: language",
    "nlp_mnli": "Study 5b: language",
}


def aggregate_inputs(w):
    runs = [d + "/metrics.json" for d in run_dirs(w.study)]
    if w.study == "recipe":  # the LR finder's curve and the probes' confusion matrices
        ds = config["recipe"]["dataset"]
        runs += [paths.LR_FIND.format(dataset=ds) + "/lr_find.json"]
        runs += [paths.RECIPE_PRETEXT.format(dataset=ds, seed=s) + "/confusion.csv" for s in config["recipe"]["seeds"]]
    return runs


rule aggregate:
    input:
        aggregate_inputs,
    output:
        summary=paths.SUMMARY,
        curves=paths.CURVES,
        metrics=paths.METRICS,
        plots=directory(paths.PLOTS),
        index=paths.PLOTS_INDEX,
    params:
        values=lambda w: stage_params("aggregate", study=w.study),
        out=lambda w: paths.AGGREGATE.format(**w),
    log:
        "logs/aggregate/{study}.log",
    resources:
        **res("light"),
    shell:
        "transferlab aggregate --params params.yaml --study {wildcards.study} --out-dir {params.out} --log {log}"


rule report:
    input:
        expand(paths.SUMMARY, study=STUDIES),
        expand(paths.CURVES, study=STUDIES),
        expand(paths.PLOTS_INDEX, study=STUDIES),
    output:
        md="reports/report.md",
        figures=[report(f"reports/figures/{f}.png", caption=f"../report/{f}.rst", category=c)
                 for f, c in FIGURES.items()],
    log:
        "logs/report.log",
    resources:
        **res("light"),
    shell:
        "transferlab report --results results/aggregate --out-dir reports --log {log}"
