# transferlab: one DAG for Snakemake; dvc.yaml describes the same stages for DVC
# (tests/test_dag_consistency.py fails if the two drift apart).
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretext.smk"
include: "workflow/rules/semisup.smk"
include: "workflow/rules/recipe.smk"
include: "workflow/rules/warmstart.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/nlp.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand(paths.PREPARED, dataset=config["datasets"]),
        "reports/report.md",
    default_target: True
