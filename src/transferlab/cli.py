"""`transferlab <command> ...`: one entry point for every stage (transferlab.registry) and
the project's tools (validate, preset, dvc_yaml, snakemake_rules, plots_html, shared_cache)."""

from __future__ import annotations

import sys


def validate(argv=None) -> None:
    import argparse

    from . import params as P

    ap = argparse.ArgumentParser(prog="transferlab validate", description="Validate params.yaml against the schema")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    P.load(a.params)
    print(f"{a.params}: valid")


def preset(argv=None) -> None:
    import argparse

    from . import params as P

    ap = argparse.ArgumentParser(
        prog="transferlab preset", description="Switch params.yaml to a preset (workflow/presets/<name>.yaml)"
    )
    ap.add_argument("name")
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args(argv)
    P.apply_preset(a.params, a.name)
    print(f"{a.params}: preset {a.name} applied")


def _file_writer(name: str, description: str, out: str, write_name: str, params: bool = False):
    """A tool that writes one generated file (`--out`, default `out`) with dvcfile's or
    smkfile's `write_name`; with `params`, a --params path too."""

    def tool(argv=None) -> None:
        import argparse
        import importlib

        ap = argparse.ArgumentParser(prog=f"transferlab {name}", description=description)
        ap.add_argument("--out", default=out)
        if params:
            ap.add_argument("--params", default="params.yaml", help="only tells DVC's dict axes from list axes")
        a = ap.parse_args(argv)
        module, function = write_name.rsplit(".", 1)
        write = getattr(importlib.import_module(f"transferlab.{module}"), function)
        if params:
            write(a.out, a.params)
        else:
            write(a.out)
        print(f"{a.out}: written")

    tool.__name__ = name
    return tool


dvc_yaml = _file_writer(
    "dvc_yaml",
    "Write dvc.yaml from the stage declarations (commit the result)",
    "dvc.yaml",
    "dvcfile.write",
    params=True,
)
snakemake_rules = _file_writer(
    "snakemake_rules",
    "Write workflow/rules/stages.smk, every stage's Snakemake rule, from the stage declarations (commit the result)",
    "workflow/rules/stages.smk",
    "smkfile.write",
)
plots_html = _file_writer(
    "plots_html",
    "Write DVC's HTML page template with vega, vega-lite and vega-embed inlined "
    "(from Snakemake's bundled copies), so `dvc plots show` draws offline; .dvc/config names "
    "it (plots.html_template)",
    ".dvc/plots.html",
    "dvcfile.write_plots_html",
)


def shared_cache(argv=None) -> None:
    import argparse

    from . import sharing

    ap = argparse.ArgumentParser(
        prog="transferlab shared_cache",
        description="Point this clone's DVC at a cache the group shares on this file "
        "system (cache.dir in .dvc/config.local, cache.shared group, "
        "cache.type links): outputs any clone committed are checked out "
        "as links, not copied",
    )
    ap.add_argument("cache", help="the shared cache folder (created group-owned, mode 2775, if missing)")
    ap.add_argument("--group", help="the group that shares it (default: the group owning the folder, or its parent)")
    ap.add_argument(
        "--link",
        default="symlink",
        choices=sharing.LINK_TYPES,
        help="how outputs are checked out from the cache (default symlink: works across file systems)",
    )
    a = ap.parse_args(argv)
    try:
        print(sharing.main(a.cache, a.group, a.link))
    except sharing.SharingError as e:
        raise SystemExit(f"transferlab shared_cache: error: {e}") from None


TOOLS = {f.__name__: f for f in (validate, preset, dvc_yaml, snakemake_rules, plots_html, shared_cache)}


def usage() -> str:
    from .registry import STAGES

    return (
        f"usage: transferlab COMMAND [args] [--log FILE]\n  stages: {', '.join(STAGES)}\n"
        f"  tools:  {', '.join(TOOLS)}\n`transferlab COMMAND --help` describes one."
    )


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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # less the umask, as open()
    os.dup2(fd, 2)
    os.close(fd)
    job = os.environ.get("SLURM_JOB_ID")
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    sys.stderr.write(
        f"=== {stamp} transferlab {argv[0]} on {socket.gethostname()}"
        f"{f' (SLURM job {job})' if job else ''} pid {os.getpid()}\n"
    )
    sys.stderr.flush()
    return original


def _pop_log(argv: list[str]) -> tuple[list[str], str | None]:
    if "--log" in argv:
        i = argv.index("--log")
        if i + 1 >= len(argv):
            raise SystemExit("--log needs a path")
        return argv[:i] + argv[i + 2 :], argv[i + 1]
    return argv, None


# Set on the re-executed process, so that a project whose copy cannot be imported fails once.
OWN_CODE = "TRANSFERLAB_OWN_CODE"


def run_own_code(argv: list[str]) -> None:
    """Run the code of the project this command runs in. A project copied with its .venv (or a
    .venv made for another copy) imports the other folder's src/ (the editable install's path),
    so a stage would silently run someone else's code: where the working folder holds its own
    src/transferlab and that is not what was imported, run again with it first on the path."""
    import os
    from pathlib import Path

    own = Path.cwd() / "src" / "transferlab"
    imported = Path(__file__).resolve().parent
    if not (own / "__init__.py").is_file() or own.resolve() == imported:
        return
    if os.environ.get(OWN_CODE):
        raise SystemExit(f"transferlab: this project's code ({own}) imports as {imported}; check PYTHONPATH")
    path = os.pathsep.join(p for p in (str(own.parent), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, **{OWN_CODE: "1"})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "transferlab", *argv], env)


def main(argv=None) -> None:
    if argv is None:  # the command line's own process (a caller's in-process call is left alone)
        run_own_code(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if argv else 2)
    if argv[0] in TOOLS:
        run = TOOLS[argv[0]]
    else:
        from .registry import find

        st = find(argv[0])
        if st is None:
            print(f"transferlab: unknown command {argv[0]!r}\n{usage()}", file=sys.stderr)
            raise SystemExit(2)
        from .runs import Job

        run = lambda args: st.func(Job.parse(st, args))  # noqa: E731
    argv, log_path = _pop_log(argv)
    from .io import InputError
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
        run(argv[1:])
    except InputError as e:  # ParamsError, DataError and every unreadable input file
        # Bad input: a clear message, no traceback, non-zero exit.
        say(f"transferlab {argv[0]}: error: {e}\n")
        raise SystemExit(1) from None
    except Preempted as e:
        say(f"transferlab {argv[0]}: preempted by {e}\n")
        raise SystemExit(EXIT_PREEMPTED) from None


if __name__ == "__main__":
    main()
