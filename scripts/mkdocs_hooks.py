"""MkDocs hook: the reference pages generated at build time, so that they cannot drift: every key
of params.yaml from the JSON schema (with each study's sections), and every command's help."""

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


def on_files(files, config):
    for uri, make in PAGES.items():
        files.append(File.generated(config, uri, content=make()))
    for uri, text in results_pages().items():
        files.append(File.generated(config, uri, content=text))
    return files
