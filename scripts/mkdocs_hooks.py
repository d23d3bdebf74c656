"""MkDocs hook: the pages generated at build time, so that they cannot drift: every key of
params.yaml from the JSON schema (with each study's sections), every command's help, every
file of benchmarks/results/, the scorecard of the embedded default (from the run
`scripts/refresh_docs_assets.py` copied into docs/assets/default-run/) and of the real preset
(benchmarks/results/rescore_floors_real.csv), and on each study's page its claims, what the
presets change in its section, and its figures."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File


def _type(node: dict, root: dict) -> str:
    """A schema node in a few words: its type, enum or the $def it names."""
    if "$ref" in node:
        return f"`{node['$ref'].rsplit('/', 1)[-1]}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    if "allOf" in node:
        return " and ".join(_type(n, root) for n in node["allOf"])
    kind = node.get("type", "")
    if kind == "array" and "items" in node:
        return f"list of {_type(node['items'], root)}"
    return " or ".join(kind) if isinstance(kind, list) else (kind or "any")


def _rows(node: dict, root: dict, path: str) -> list[str]:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    rows = []
    for key, sub in props.items():
        here = f"{path}.{key}" if path else key
        what = _type(sub, root) if "properties" not in sub else "section"
        bounds = ", ".join(
            f"{k} {sub[k]}" for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in sub
        )
        note = " ".join(filter(None, [bounds, sub.get("description", "")]))
        rows.append(f"| `{here}` | {what} | {'yes' if key in required else ''} | {note} |")
        rows += _rows(sub, root, here)
    return rows


def params_page() -> str:
    from transferlab import params

    schema = params.schema()
    return "\n".join(
        [
            "# params.yaml",
            "",
            "Every key, from `workflow/schemas/params.schema.yaml` and each study's `params.schema.yaml`",
            "(generated when the site is built). `transferlab validate` checks a file against it and",
            "names each bad key. A type in backticks is one of the schema's shared definitions.",
            "",
            "| key | type | required | notes |",
            "|---|---|---|---|",
            *_rows(schema, schema, ""),
            "",
        ]
    )


def cli_page() -> str:
    from transferlab import cli
    from transferlab.registry import STAGES

    parts = [
        "# Command line",
        "",
        "Generated when the site is built from `transferlab --help` and each",
        "stage's parser. Rule name = DVC stage = command = function.",
        "",
        "```",
        cli.usage(),
        "```",
        "",
    ]
    for name, st in STAGES.items():
        parts += [f"## `{name}`", "", "```", st.parser().format_help().rstrip(), "```", ""]
    return "\n".join(parts)


PAGES = {"reference/params.md": params_page, "reference/cli.md": cli_page}
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks/results"


def results_pages() -> dict[str, str]:
    """Every measured table in benchmarks/results/ (each written by the benchmark its header
    names), as a page, and an index of them."""
    pages, index = (
        {},
        [
            "# Measured results",
            "",
            "Each page is a file of `benchmarks/results/`, written by the",
            "benchmark script it names; the site shows them as they are.",
            "",
        ],
    )
    for md in sorted(RESULTS.glob("*.md")):
        text = md.read_text()
        title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), md.stem)
        pages[f"results/{md.stem}.md"] = text if text.startswith("#") else f"# {md.stem}\n\n{text}"
        index.append(f"- [{title}]({md.stem}.md) (`benchmarks/results/{md.name}`)")
    pages["results/index.md"] = "\n".join(index) + "\n"
    return pages


ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN = ROOT / "docs/assets/default-run"  # written by scripts/refresh_docs_assets.py
SCORECARDS = {  # page -> (title, the scorecard file, its forest plot under docs/, where it came from)
    "results/scorecard-embedded.md": (
        "Scorecard: the embedded default",
        DEFAULT_RUN / "scorecard.csv",
        "assets/default-run/figures/scorecard.png",
        DEFAULT_RUN / "SOURCE.md",
    ),
    "results/scorecard-real.md": (
        "Scorecard: the real preset",
        RESULTS / "rescore_floors_real.csv",
        "assets/real/scorecard.png",
        None,
    ),
}


def scorecard_page(title: str, csv: Path, figure: str, source: Path | None) -> str:
    """A preset's scorecard as the report shows it: the plain words, then every row (claim,
    setting, effect, interval, verdict), then the forest plot."""
    import pandas as pd

    from transferlab.stages.report import plain_lines, scorecard_lines

    card = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    where = (
        source.read_text().strip()
        if source
        else f"From `{csv.relative_to(ROOT)}`: the real preset's runs on `../shared/realdata` at 2b56be0 (with "
        "stand-ins for what it lacks; the transfer study and the reference jobs rerun at c500f64), scored by the "
        "rules of issue 38 (`python benchmarks/rescore.py --work DIR --before CARD`, "
        f"[its page]({csv.stem}.md))."
    )
    return "\n".join(
        [f"# {title}", "", where, "", *plain_lines(card), *scorecard_lines(card), f"![scorecard](../{figure})", ""]
    )


def _flat(node: dict, prefix: str = "") -> dict:
    """{dotted key: value} of a params section's leaves."""
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _short(value, width: int = 40) -> str:
    text = str(value).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def study_sections(name: str) -> str:
    """What a study's page gets from the code and the run: its claims (as the scorecard declares
    them), the keys each preset sets in its section, and its figures from the default run."""
    import yaml

    from transferlab.catalog import BY_NAME
    from transferlab.stages.report import REPORTS

    study = BY_NAME[name]
    lines = ["", "## The claims it tests", "", "| claim | statement | source | the source measured | expected |"]
    lines.append("|---|---|---|---|---|")
    for c in study.claims:
        lines.append(f"| `{c.id}` | {c.statement} | {c.source} | {c.reported} | `{c.expect}` |")
    default = _flat(yaml.safe_load((ROOT / "params.yaml").read_text()).get(name) or {})
    lines += [
        "",
        "## What the presets change",
        "",
        f"Against `params.yaml` (the embedded default), under `{name}`:",
        "",
    ]
    lines += ["| preset | what it sets otherwise |", "|---|---|"]
    for preset in sorted((ROOT / "workflow/presets").glob("*.yaml")):
        section = _flat((yaml.safe_load(preset.read_text()) or {}).get(name) or {})
        changed = [f"`{k}`: `{_short(v)}`" for k, v in section.items() if default.get(k) != v]
        lines.append(f"| `{preset.stem}` | {', '.join(changed) or 'nothing'} |")
    figures = getattr(REPORTS.get(name), "FIGURES", {})
    if figures:
        lines += ["", "## Figures", "", (DEFAULT_RUN / "SOURCE.md").read_text().strip(), ""]
        for figure in figures:
            caption = ROOT / f"workflow/report/{figure}.rst"
            text = " ".join(caption.read_text().split()) if caption.is_file() else figure
            lines += [f"![{figure}](../assets/default-run/figures/{figure}.png)", "", f"*{text}*", ""]
    return "\n".join(lines) + "\n"


def on_files(files, config):
    for uri, make in PAGES.items():
        files.append(File.generated(config, uri, content=make()))
    for uri, text in results_pages().items():
        files.append(File.generated(config, uri, content=text))
    for uri, (title, csv, figure, source) in SCORECARDS.items():
        files.append(File.generated(config, uri, content=scorecard_page(title, csv, figure, source)))
    return files


STAGES_TABLE = "<!-- generated: every stage, its grid and items, its params keys (scripts/mkdocs_hooks.py) -->"


def stages_table() -> str:
    """Every stage as declared: its name, what one job does (its docstring's first line), the
    axes of its jobs and of the items one job loops over, and the params keys it is handed."""
    from transferlab.registry import STAGES

    rows = ["| stage | what one job does | jobs per | items per job | params it reads |", "|---|---|---|---|---|"]
    for name, st in STAGES.items():
        doc = (st.func.__doc__ or "").strip().split("\n\n")[0]
        what = " ".join(doc.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        grid = ", ".join(f"`{axis}`" for axis in st.grid) or "one job"
        items = ", ".join(f"`{axis}`" for axis in st.batch) or "-"
        keys = ", ".join(f"`{key}`" for key in st.params) or "-"
        rows.append(f"| `{name}` | {what} | {grid} | {items} | {keys} |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files):
    """A study's page (docs/studies/<study>.md: its protocol, in prose) gets its generated
    sections; the runners' page its table of stages."""
    uri = page.file.src_uri
    if STAGES_TABLE in markdown:
        return markdown.replace(STAGES_TABLE, stages_table())
    if uri.startswith("studies/") and uri != "studies/index.md":
        return markdown.rstrip() + "\n" + study_sections(Path(uri).stem)
    return markdown
