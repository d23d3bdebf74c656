"""params.yaml: loading, schema validation, presets.

The keys each stage reads are part of its declaration (transferlab.stage): the stage is
handed only those, and dvc.yaml's `params:` lists and Snakemake's rule `params:` come from the
same declaration, so a change reruns exactly the dependents.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from .io import InputError, atomic_write_text, read_text

DEFAULT_SCHEMA = Path("workflow/schemas/params.schema.yaml")

# Run settings that once sat in `train` (a params.yaml from before they moved names them there).
MOVED_TO_RUN = {"device", "amp", "progress"}


class ParamsError(InputError):
    """A params file is missing, unparsable, or does not match the schema."""


def parse_yaml(text: str) -> Any:
    """YAML 1.2 (ruamel's safe loader), as DVC reads params.yaml: `lr: 1e-3` is a number and
    `yes` a string. PyYAML (YAML 1.1, what Snakemake's `configfile:` uses) reads `1e-3` as a
    string, so the two runners would disagree; every reader of params goes through here."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def load_yaml(path: str | Path, parse: Callable[[str], Any] = parse_yaml) -> Any:
    """A YAML file parsed by `parse`, or a ParamsError naming the file: missing, not UTF-8, not YAML."""
    from ruamel.yaml import YAMLError

    path = Path(path)
    try:
        text = read_text(path, "a UTF-8 YAML file")
    except InputError as e:
        raise ParamsError(str(e)) from None
    try:
        return parse(text)
    except YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e


def differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two params trees (a key in one only included)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b]) for d in differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".") or "<top level>"] if a != b else []


def overlaid(base: dict, overrides: dict) -> dict:
    """A copy of `base` with `overrides` merged in key by key, as Snakemake merges --config and
    --configfile into its config (dicts merge, anything else replaces: the presets' merge,
    without their whole-section replacements)."""
    out = copy.deepcopy(base)
    _deep_update(out, overrides, top=False)
    return out


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _declared_keys(schema: dict, root: dict) -> set[str]:
    """The property names a schema declares, through allOf and local $refs (#/$defs/...)."""
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return _declared_keys(node, root)
    keys = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        keys |= _declared_keys(sub, root)
    return keys


def _describe(err: jsonschema.ValidationError, root: dict) -> str | None:
    """One line naming the bad key and what was expected; None for an error that only echoes
    another (see below)."""
    where = _key_path(err.absolute_path)
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        # jsonschema names the offenders: "('a', 'b' were unexpected)" / "('a' was unexpected)".
        extra = re.findall(r"'([^']*)'", err.message.split("(", 1)[-1])
        declared = _declared_keys(err.schema, root)
        # A key whose value failed its own check counts as unevaluated too (JSON Schema drops
        # a failing subschema's annotations): that key is not unknown, its value is wrong,
        # and the value's own error says so.
        extra = [k for k in extra if k not in declared]
        if not extra:
            return None
        allowed = sorted((declared | set(err.instance)) - set(extra))
        keys = ", ".join(f"{where}.{k}" if err.absolute_path else k for k in extra) or where
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"{keys}: unknown key{hint}"
    if err.validator == "required":
        return f"{where}: {err.message}"
    expected = {
        "type": lambda: f"expected type {err.validator_value}",
        "enum": lambda: f"expected one of {err.validator_value}",
        "const": lambda: f"expected {err.validator_value!r}",
        "minimum": lambda: f"expected >= {err.validator_value}",
        "maximum": lambda: f"expected <= {err.validator_value}",
        "exclusiveMinimum": lambda: f"expected > {err.validator_value}",
        "exclusiveMaximum": lambda: f"expected < {err.validator_value}",
        "pattern": lambda: f"expected to match {err.validator_value!r}",
        "minItems": lambda: f"expected at least {err.validator_value} item(s)",
        "uniqueItems": lambda: "expected no duplicates",
    }.get(err.validator)
    got = f"got {err.instance!r}"
    return f"{where}: {expected() + ', ' + got if expected else err.message}"


def non_finite(node: Any, prefix: str = "") -> list[str]:
    """A problem for each float that is NaN or infinite (`.nan`, `.inf` in YAML). JSON Schema's
    `number` admits them, and NaN is unequal to itself, so it would pass every range check and
    make two readings of one params.yaml look different (Snakemake's override check)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in non_finite(v, f"{prefix}{k}.")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in non_finite(v, f"{prefix}{i}.")]
    if isinstance(node, float) and not math.isfinite(node):
        return [f"{prefix.rstrip('.') or '<top level>'}: expected a finite number, got {node!r}"]
    return []


def _leaf_errors(errors):
    # allOf/if-then wrap the real cause; report the innermost errors, which name the key.
    for err in errors:
        if err.context:
            yield from _leaf_errors(err.context)
        else:
            yield err


def studies() -> tuple:
    """The studies (transferlab.catalog), whose sections and cross-checks params.yaml must meet.

    Imported by name, at the first validation, not by an import statement: validating computes
    nothing a stage's outputs depend on (it passes or refuses), so the studies' code is not a
    code dependency of every stage that reads params (transferlab.codedeps follows imports)."""
    import importlib

    return importlib.import_module(f"{__package__}.catalog").STUDIES


def schema(schema_path: str | Path = DEFAULT_SCHEMA, of_studies: tuple | None = None) -> dict:
    """The project's schema with every study's sections added (and required)."""
    full = load_yaml(schema_path)
    for study in studies() if of_studies is None else of_studies:
        full["properties"].update(study.schema)
        full["required"] += [key for key in study.schema if key not in full["required"]]
    return full


def validate(
    params: Any, schema_path: str | Path = DEFAULT_SCHEMA, source: str = "params.yaml", of_studies: tuple | None = None
) -> dict:
    """Check `params` against the schema and cross-key rules; raise ParamsError naming each bad key.
    `of_studies`: the studies whose sections it holds (default: transferlab.catalog's)."""
    of_studies = studies() if of_studies is None else of_studies
    full = schema(schema_path, of_studies)
    validator = jsonschema.Draft202012Validator(full)
    errors = sorted(
        # a NaN or an infinity fails its range checks too: non_finite names it once, plainly
        (e for e in _leaf_errors(validator.iter_errors(params)) if not non_finite(e.instance)),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    problems = [line for line in dict.fromkeys(_describe(e, full) for e in errors) if line]
    problems = [*non_finite(params), *problems]
    train = params.get("train") if isinstance(params, dict) else None
    for key in MOVED_TO_RUN & set(train if isinstance(train, dict) else ()):
        problems = [
            f"train.{key}: moved to run.{key} (how a job executes, which no stage declares, so "
            "changing it reruns nothing)",
            *(p for p in problems if not p.startswith(f"train.{key}")),
        ]
    if not problems:
        problems = [problem for study in of_studies for problem in study.cross_checks(params)]
    if problems:
        raise ParamsError(f"{source} is invalid:\n  " + "\n  ".join(problems))
    return params


def undefined_datasets(p: dict, refs: list[tuple[str, str]]) -> list[str]:
    """A problem for each (key, data set name) whose data set is not defined under `datasets`."""
    return [
        f"{key}: {name!r} is not defined under datasets (defined: {', '.join(p['datasets'])})"
        for key, name in refs
        if name not in p["datasets"]
    ]


def project_file(params_path: Path, relative: str | Path) -> Path:
    """A project file for the params file at `params_path`: beside it where its folder is a
    project (has the file), else this folder's (a params.yaml kept elsewhere, checked or
    switched with --params from the project)."""
    beside = params_path.parent / relative
    return beside if beside.exists() or not Path(relative).exists() else Path(relative)


def load(path: str | Path = "params.yaml", schema_path: str | Path | None = None) -> dict:
    path = Path(path)
    schema_path = Path(schema_path) if schema_path else project_file(path, DEFAULT_SCHEMA)
    return validate(load_yaml(path), schema_path, source=str(path))


def get(params: dict, key: str) -> Any:
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"params key {key!r} not found")
        node = node[part]
    return node


# ---------------------------------------------------------------- presets
# Sections a preset replaces whole instead of merging into: a preset must be able to drop
# data sets (the embedded preset cannot prepare MNIST offline) and a text source's keys
# (text.corpus: pydoc -> hf).
REPLACED_BY_PRESETS = {"datasets", "text"}


def _deep_update(node, overlay, top=True):
    for k, v in overlay.items():
        if top and k in REPLACED_BY_PRESETS:
            node[k] = v
        elif isinstance(v, dict) and isinstance(node.get(k), dict):
            _deep_update(node[k], v, top=False)
        else:
            node[k] = v


def apply_preset(params_path: str | Path, name: str, presets_dir: str | Path | None = None) -> dict:
    """Overlay workflow/presets/<name>.yaml onto params.yaml, keeping its comments.

    The result is validated before it replaces the file (atomically), so a bad preset never
    leaves a broken params.yaml behind.
    """
    from io import StringIO

    from ruamel.yaml import YAML

    params_path = Path(params_path)
    presets_dir = Path(presets_dir) if presets_dir else project_file(params_path, "workflow/presets")
    if not presets_dir.is_dir():
        raise ParamsError(f"preset {name!r}: no presets folder {presets_dir} (run from the project, or beside it)")
    preset_file = presets_dir / f"{name}.yaml"
    if not preset_file.is_file():
        known = sorted(p.stem for p in presets_dir.glob("*.yaml"))
        raise ParamsError(f"preset {name!r}: {preset_file} not found (known presets: {', '.join(known) or 'none'})")
    rt = YAML()
    rt.preserve_quotes = True
    # overlaid as ruamel reads it: floats keep their spelling (PyYAML would write 2e-05, which
    # YAML 1.1 readers take for a string)
    doc, overlay = (load_yaml(path, rt.load) for path in (params_path, preset_file))
    _deep_update(doc, overlay)
    doc["preset"] = name
    buf = StringIO()
    rt.dump(doc, buf)
    text = buf.getvalue()
    validate(parse_yaml(text), project_file(params_path, DEFAULT_SCHEMA), source=f"{params_path} with preset {name}")
    atomic_write_text(params_path, text)
    return parse_yaml(text)
