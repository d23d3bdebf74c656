"""`transferlab <command> ...`: one entry point for every stage (registry of commands)."""

from __future__ import annotations

import importlib
import sys

# command -> "module:function", imported lazily so `transferlab report` never imports torch.
COMMANDS = {
    "prepare": "transferlab.stages.data:prepare_main",
    "subsample": "transferlab.stages.data:subsample_main",
    "pretrain": "transferlab.stages.pretext:pretrain_main",
    "finetune": "transferlab.stages.pretext:finetune_main",
    "semisup-pretrain": "transferlab.stages.semisup:pretrain_main",
    "semisup-finetune": "transferlab.stages.semisup:finetune_main",
    "lr-find": "transferlab.stages.recipe:lr_find_main",
    "recipe-pretext": "transferlab.stages.recipe:pretext_main",
    "recipe-train": "transferlab.stages.recipe:train_main",
    "ws-pretrain": "transferlab.stages.warmstart:pretrain_main",
    "ws-train": "transferlab.stages.warmstart:train_main",
    "ws-remedy": "transferlab.stages.warmstart:remedy_main",
    "ws-transition": "transferlab.stages.warmstart:transition_main",
    "ws-stages": "transferlab.stages.warmstart:stages_main",
    "transfer-standin": "transferlab.stages.transfer:standin_main",
    "transfer-finetune": "transferlab.stages.transfer:finetune_main",
    "corpus": "transferlab.stages.nlp:corpus_main",
    "nli-data": "transferlab.stages.nlp:nli_data_main",
    "lm": "transferlab.stages.nlp:lm_main",
    "nli-lm": "transferlab.stages.nlp:nli_lm_main",
    "nli-bert": "transferlab.stages.nlp:nli_bert_main",
    "aggregate": "transferlab.stages.aggregate:main",
    "report": "transferlab.stages.report:main",
    "validate": "transferlab.cli:validate_main",
    "preset": "transferlab.cli:preset_main",
}


def validate_main(argv=None) -> None:
    import argparse

    from . import params as P

    ap = argparse.ArgumentParser(description="Validate params.yaml against the schema")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    P.load(a.params)
    print(f"{a.params}: valid")


def preset_main(argv=None) -> None:
    import argparse

    from . import params as P

    ap = argparse.ArgumentParser(description="Switch params.yaml to a preset (workflow/presets/<name>.yaml)")
    ap.add_argument("name")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    P.apply_preset(a.params, a.name)
    print(f"{a.params}: preset {a.name} applied")


def _redirect_stderr(path: str, argv: list[str]) -> int:
    """Send this process's stderr (logging, tqdm, tracebacks) to `path`; return a dup of the
    original stderr so that a clean error message can still reach the terminal too.

    The log is appended to, one header per attempt: when a preempted job is resubmitted, the
    log still shows why the first attempt stopped and where the second one resumed."""
    import datetime
    import os
    import socket
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    original = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    job = os.environ.get("SLURM_JOB_ID")
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    sys.stderr.write(f"=== {stamp} transferlab {argv[0]} on {socket.gethostname()}"
                     f"{f' (SLURM job {job})' if job else ''} pid {os.getpid()}\n")
    sys.stderr.flush()
    return original


def _pop_log(argv: list[str]) -> tuple[list[str], str | None]:
    if "--log" in argv:
        i = argv.index("--log")
        if i + 1 >= len(argv):
            raise SystemExit("--log needs a path")
        return argv[:i] + argv[i + 2:], argv[i + 1]
    return argv, None


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    argv, log_path = _pop_log(argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: transferlab {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        raise SystemExit(2)
    mod, fn = COMMANDS[argv[0]].split(":")
    from .data.format import DataError
    from .params import ParamsError
    from .preempt import EXIT_PREEMPTED, Preempted

    # Both runners pass the same `--log` (DVC would not create a redirect's folder).
    original = _redirect_stderr(log_path, argv) if log_path else None

    def say(msg: str) -> None:
        """On the terminal and in the log."""
        sys.stderr.write(msg)
        sys.stderr.flush()
        if original is not None:
            import os

            os.write(original, msg.encode())

    try:
        getattr(importlib.import_module(mod), fn)(argv[1:])
    except (ParamsError, DataError) as e:
        # Bad input: a clear message, no traceback, non-zero exit.
        say(f"transferlab {argv[0]}: error: {e}\n")
        raise SystemExit(1)
    except Preempted as e:
        say(f"transferlab {argv[0]}: preempted by {e}\n")
        raise SystemExit(EXIT_PREEMPTED)


if __name__ == "__main__":
    main()
