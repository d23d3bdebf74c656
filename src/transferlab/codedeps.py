"""The source files a stage runs, read from the imports: its module and every transferlab module
it imports, transitively (package __init__ files included: importing a module runs them). Both
runners take them as the stage's dependencies, so a code change reruns exactly its dependents."""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = "src/transferlab"  # where the package's files sit in the repository (deps are relative paths)


def _module_file(name: str) -> Path | None:
    """The file of transferlab module `name` (a package: its __init__.py), or None."""
    rel = name.split(".")[1:]
    path = PACKAGE_DIR.joinpath(*rel)
    if path.is_dir() and (path / "__init__.py").is_file():
        return path / "__init__.py"
    path = path.with_suffix(".py")
    return path if path.is_file() else None


def _source(name: str) -> Path:
    """The file of transferlab module `name`, which must exist (it was found by _imports)."""
    file = _module_file(name)
    if file is None:
        raise ModuleNotFoundError(f"{name}: no such transferlab module")
    return file


def _imports(name: str) -> set[str]:
    """The transferlab modules that module `name` imports, anywhere in its body."""
    file = _source(name)
    is_package = file.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "transferlab"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = importlib.util.resolve_name(
                    "." * node.level + (node.module or ""), name if is_package else name.rpartition(".")[0]
                )
            else:
                base = node.module or ""
            if base.split(".")[0] != "transferlab":
                continue
            found.add(base)
            # `from pkg import module` imports that module too
            found |= {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    with_parents = set()
    for mod in found:
        parts = mod.split(".")
        with_parents |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in with_parents if _module_file(m)}


# Declaring a stage computes nothing (what it imports still counts), nor does finding its code:
# a change there that matters changes the commands, which both runners compare anyway. Counting
# them would rerun every stage for a new declaration.
NOT_CODE = {"transferlab.stage", "transferlab.codedeps"}


@cache
def declares_stages(name: str) -> bool:
    """Whether module `name` declares stages: it calls transferlab.stage.stage (as a decorator,
    @stage(...), or through a helper of its own that does)."""
    tree = ast.parse(_source(name).read_text())
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "stage" for node in ast.walk(tree))


@cache
def code_files(module: str) -> list[str]:
    """Repository paths of `module` and every transferlab module it imports, transitively
    (package __init__ files included: importing a module runs them)."""
    seen, todo = set(), [module]
    parts = module.split(".")
    todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        # Another module's stages (reached through transferlab.catalog, by the stages that gather
        # every study) count for their declarations and the labels they give their runs, not for
        # what they train with: their imports are their own stages' code.
        if mod == module or not declares_stages(mod):
            todo += sorted(_imports(mod) - seen)
    return sorted(f"{SOURCE_ROOT}/{_source(m).relative_to(PACKAGE_DIR).as_posix()}" for m in seen - NOT_CODE)
