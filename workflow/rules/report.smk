rule aggregate:
    input:
        [d + "/metrics.json" for d in run_dirs("pretrain") + run_dirs("finetune")],
    output:
        summary=paths.SUMMARY,
        curves=paths.CURVES,
        metrics=paths.METRICS,
        plots=paths.PLOTS,
    params:
        values=lambda w: stage_params("aggregate"),
    log:
        "logs/aggregate.log",
    resources:
        **res("light"),
    shell:
        "transferlab aggregate --params params.yaml --out-dir results --log {log}"


rule report:
    input:
        summary=paths.SUMMARY,
        curves=paths.CURVES,
    output:
        md="reports/report.md",
        curves=report("reports/figures/pretext_curves.png", caption="../report/pretext_curves.rst",
                      category="Study 1: pretext"),
        accuracy=report("reports/figures/pretext_accuracy.png", caption="../report/pretext_accuracy.rst",
                        category="Study 1: pretext"),
        gap=report("reports/figures/pretext_gap.png", caption="../report/pretext_gap.rst",
                   category="Study 1: pretext"),
    log:
        "logs/report.log",
    resources:
        **res("light"),
    shell:
        "transferlab report --summary {input.summary} --curves {input.curves} --out-dir reports --log {log}"
