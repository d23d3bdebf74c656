# Study 4: warm starting and plasticity. Every run's numbers come from an experiment grid in
# params.yaml (warmstart.*) as wildcards; the base runs (setup.optimizer's runs of experiment 1)
# are the pretrained model and fresh baseline of experiments 6 and 8.
def ws(template, **fixed):
    """A run template with some wildcards fixed (e.g. phase='pretrain')."""
    for k, v in fixed.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def ws_outputs(template, model=False):
    outs = {"metrics": template + "/metrics.json", "live": directory(template + "/live")}
    return {"model": template + "/model.pt", **outs} if model else outs


def ws_params(template, family):
    return {"values": lambda w: stage_params(family), "out": lambda w: template.format(**w),
            "ckpt": lambda w: paths.checkpoint(template.format(**w))}


WS_TAIL = "--seed {wildcards.seed} --checkpoint {params.ckpt} --out {params.out} --log {log}"
BASE_PRETRAIN = ws(paths.WS_OPTIM, optimizer=config["warmstart"]["setup"]["optimizer"], phase="pretrain")


rule ws_optim_pretrain:
    input: data=paths.PREPARED
    output: **ws_outputs(ws(paths.WS_OPTIM, phase="pretrain"), model=True)
    params: **ws_params(ws(paths.WS_OPTIM, phase="pretrain"), "ws-pretrain")
    log: "logs/" + ws(paths.WS_OPTIM, phase="pretrain") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-pretrain --params params.yaml --data {input.data} --optimizer {wildcards.optimizer} " + WS_TAIL


rule ws_optim_warm:
    input: data=paths.PREPARED, init=ws(paths.WS_OPTIM, phase="pretrain") + "/model.pt"
    output: **ws_outputs(ws(paths.WS_OPTIM, phase="warm"))
    params: **ws_params(ws(paths.WS_OPTIM, phase="warm"), "ws-train")
    log: "logs/" + ws(paths.WS_OPTIM, phase="warm") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-train --params params.yaml --data {input.data} --optimizer {wildcards.optimizer} "
        "--init {input.init} " + WS_TAIL


rule ws_optim_fresh:
    input: data=paths.PREPARED
    output: **ws_outputs(ws(paths.WS_OPTIM, phase="fresh"))
    params: **ws_params(ws(paths.WS_OPTIM, phase="fresh"), "ws-train")
    log: "logs/" + ws(paths.WS_OPTIM, phase="fresh") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-train --params params.yaml --data {input.data} --optimizer {wildcards.optimizer} " + WS_TAIL


rule ws_length_pretrain:
    input: data=paths.PREPARED
    output: **ws_outputs(ws(paths.WS_LENGTH, phase="pretrain"), model=True)
    params: **ws_params(ws(paths.WS_LENGTH, phase="pretrain"), "ws-pretrain")
    log: "logs/" + ws(paths.WS_LENGTH, phase="pretrain") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-pretrain --params params.yaml --data {input.data} --epochs {wildcards.epochs} " + WS_TAIL


rule ws_length_warm:
    input: data=paths.PREPARED, init=ws(paths.WS_LENGTH, phase="pretrain") + "/model.pt"
    output: **ws_outputs(ws(paths.WS_LENGTH, phase="warm"))
    params: **ws_params(ws(paths.WS_LENGTH, phase="warm"), "ws-train")
    log: "logs/" + ws(paths.WS_LENGTH, phase="warm") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-train --params params.yaml --data {input.data} --init {input.init} " + WS_TAIL


rule ws_transition:
    input: data=paths.PREPARED
    output: **ws_outputs(paths.WS_TRANSITION)
    params: **ws_params(paths.WS_TRANSITION, "ws-transition")
    log: "logs/" + paths.WS_TRANSITION + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-transition --params params.yaml --data {input.data} --gamma {wildcards.gamma} " + WS_TAIL


rule ws_stages:
    input: data=paths.PREPARED
    output: **ws_outputs(paths.WS_STAGES)
    params: **ws_params(paths.WS_STAGES, "ws-stages")
    log: "logs/" + paths.WS_STAGES + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-stages --params params.yaml --data {input.data} --stages {wildcards.stages} "
        "--ratio {wildcards.ratio} --remedy {wildcards.remedy} " + WS_TAIL


rule ws_arch_pretrain:
    input: data=paths.PREPARED
    output: **ws_outputs(ws(paths.WS_ARCH, phase="pretrain"), model=True)
    params: **ws_params(ws(paths.WS_ARCH, phase="pretrain"), "ws-pretrain")
    log: "logs/" + ws(paths.WS_ARCH, phase="pretrain") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-pretrain --params params.yaml --data {input.data} --width {wildcards.width} "
        "--depth {wildcards.depth} " + WS_TAIL


rule ws_arch_warm:
    input: data=paths.PREPARED, init=ws(paths.WS_ARCH, phase="pretrain") + "/model.pt"
    output: **ws_outputs(ws(paths.WS_ARCH, phase="warm"))
    params: **ws_params(ws(paths.WS_ARCH, phase="warm"), "ws-train")
    log: "logs/" + ws(paths.WS_ARCH, phase="warm") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-train --params params.yaml --data {input.data} --width {wildcards.width} "
        "--depth {wildcards.depth} --init {input.init} " + WS_TAIL


rule ws_arch_fresh:
    input: data=paths.PREPARED
    output: **ws_outputs(ws(paths.WS_ARCH, phase="fresh"))
    params: **ws_params(ws(paths.WS_ARCH, phase="fresh"), "ws-train")
    log: "logs/" + ws(paths.WS_ARCH, phase="fresh") + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-train --params params.yaml --data {input.data} --width {wildcards.width} "
        "--depth {wildcards.depth} " + WS_TAIL


rule ws_reset:
    input: data=paths.PREPARED, init=BASE_PRETRAIN + "/model.pt"
    output: **ws_outputs(paths.WS_RESET)
    params: **ws_params(paths.WS_RESET, "ws-train")
    log: "logs/" + paths.WS_RESET + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-train --params params.yaml --data {input.data} --init {input.init} "
        "--reset {wildcards.mode} {wildcards.n} " + WS_TAIL


rule ws_tune_pretrain:
    input: data=paths.PREPARED
    output: **ws_outputs(paths.WS_TUNE_PRE, model=True)
    params: **ws_params(paths.WS_TUNE_PRE, "ws-pretrain")
    log: "logs/" + paths.WS_TUNE_PRE + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-pretrain --params params.yaml --data {input.data} --lr {wildcards.plr} " + WS_TAIL


rule ws_tune_warm:
    input: data=paths.PREPARED, init=paths.WS_TUNE_PRE + "/model.pt"
    output: **ws_outputs(paths.WS_TUNE)
    params: **ws_params(paths.WS_TUNE, "ws-train")
    log: "logs/" + paths.WS_TUNE + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-train --params params.yaml --data {input.data} --lr {wildcards.tlr} --init {input.init} "
        + WS_TAIL


rule ws_tune_fresh:
    input: data=paths.PREPARED
    output: **ws_outputs(paths.WS_TUNE_FRESH)
    params: **ws_params(paths.WS_TUNE_FRESH, "ws-train")
    log: "logs/" + paths.WS_TUNE_FRESH + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell: "transferlab ws-train --params params.yaml --data {input.data} --lr {wildcards.tlr} " + WS_TAIL


rule ws_remedy:
    input: data=paths.PREPARED, init=BASE_PRETRAIN + "/model.pt"
    output: **ws_outputs(paths.WS_REMEDY)
    params: **ws_params(paths.WS_REMEDY, "ws-remedy")
    log: "logs/" + paths.WS_REMEDY + ".log"
    threads: config["resources"]["train"]["cpus"]
    resources: **res("train")
    shell:
        "transferlab ws-remedy --params params.yaml --data {input.data} --init {input.init} "
        "--remedy {wildcards.remedy} " + WS_TAIL
