# Every stage's rule, generated from its declaration (@stage in src/transferlab/studies/*/stages.py
# and src/transferlab/stages/; `transferlab.registry` lists them):
# rule name = DVC stage = `transferlab` command = function. Inputs include the source files the
# stage runs, so a code change reruns exactly its dependents (as in dvc.yaml, generated from
# the same declarations).
from transferlab.registry import STAGES


def stage_outputs(st):
    """Every item's outputs; folders as directory(), the report's figures as report() entries
    for --report."""
    outs = []
    for path, is_folder in st.snakemake_outputs(config):
        stem = Path(path).stem
        if is_folder:
            outs.append(directory(path))
        elif stem in st.figures:
            outs.append(report(path, caption=f"../report/{stem}.rst", category=st.figures[stem]))
        else:
            outs.append(path)
    return outs


def gathered(st):
    """A stage's inputs it finds by itself (aggregate: the study's runs), per job."""
    return {"gathered": lambda wildcards, st=st: st.gather.snakemake(config, wildcards)} if st.gather else {}


for st in STAGES.values():

    rule:
        name:
            st.name
        input:
            **st.snakemake_inputs(config),
            **gathered(st),
        output:
            stage_outputs(st),
        params:
            values=lambda wildcards, st=st: st.params_json(config, wildcards),
            # the whole command, rendered per job (a shell: string would be evaluated when the
            # job runs, after this loop has moved on to another stage)
            command=lambda wildcards, st=st: st.render(config, wildcards),
        log:
            st.snakemake_template(st.log, config),
        wildcard_constraints:
            **st.wildcard_constraints(config),
        localrule: st.resources == "local"
        # light jobs (subsampling) form one group: the cluster profile bundles them into few
        # submissions (group-components), so seconds-long jobs do not each wait in the queue
        group: "light" if st.resources == "light" else None
        threads: config["resources"]["train"]["cpus"] if st.resources == "train" else 1
        priority: st.priority
        resources:
            **res(st.resources),
        shell:
            "{params.command}"
