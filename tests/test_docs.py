"""The documentation site builds strictly (a broken link, a page missing from the nav, an unknown
API reference fail it) and its generated pages hold what they are generated from: the reference,
the measured tables, the scorecards, each study's claims and figures. The run copied into
docs/assets/default-run/ must be of the scorecard as the code writes it now, and the README stays
a front door."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from transferlab import params, scorecard
from transferlab.catalog import STUDIES
from transferlab.registry import STAGES
from transferlab.stages.report import REPORTS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUN = REPO / "docs/assets/default-run"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return site


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_key_and_command(site):
    keys = (site / "reference/params.html").read_text()
    assert all(f"<code>{key}</code>" in keys for key in params.schema()["properties"])  # every section
    assert "<code>warmstart.setup.eval_last</code>" in keys  # and the keys inside
    commands = (site / "reference/cli.html").read_text()
    assert all(f"<code>{name}</code>" in commands for name in STAGES)
    assert "transferlab.study.Study" in (site / "reference/api.html").read_text()
    measured = sorted(p.stem for p in (REPO / "benchmarks/results").glob("*.md"))
    assert measured and all((site / "results" / f"{name}.html").is_file() for name in measured)
    index = (site / "results/index.html").read_text()
    assert all(f'href="{name}.html"' in index or f'href="{name}/"' in index for name in measured)


@pytest.mark.slow
def test_a_broken_link_fails_the_build(tmp_path):
    """The check above can fail: a page linking to a page that does not exist."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[nowhere](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: x\nstrict: true\n")
    res = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "missing.md" in res.stdout + res.stderr


@pytest.mark.slow
def test_each_study_page_lists_its_claims_and_shows_its_figures(site):
    for study in STUDIES:
        page = (site / f"studies/{study.name}.html").read_text()
        assert all(f"<code>{claim.id}</code>" in page for claim in study.claims), study.name
        for figure in getattr(REPORTS.get(study.name), "FIGURES", {}):
            assert f"assets/default-run/figures/{figure}.png" in page, figure
            assert (site / f"assets/default-run/figures/{figure}.png").is_file(), figure


@pytest.mark.slow
def test_the_scorecard_pages_show_every_row_of_their_file(site):
    for page, csv in [
        ("scorecard-embedded", DEFAULT_RUN / "scorecard.csv"),
        ("scorecard-real", REPO / "benchmarks/results/rescore_floors_real.csv"),
    ]:
        html = (site / f"results/{page}.html").read_text()
        card = pd.read_csv(csv)
        assert all(claim in html for claim in card.claim.unique()) or all(
            statement in html for statement in card.statement.unique()
        ), page
        assert "scorecard.png" in html and "In plain words" in html


def test_the_copied_default_run_is_of_the_current_scorecard():
    """docs/assets/default-run/ (scripts/refresh_docs_assets.py) holds a scorecard with the
    columns and claims the code writes now: a new column or claim means the copy is stale."""
    card = pd.read_csv(DEFAULT_RUN / "scorecard.csv")
    assert list(card.columns) == scorecard.COLUMNS
    declared = {claim.id for study in STUDIES for claim in study.claims}
    assert set(card.claim) == declared
    assert "commit" in (DEFAULT_RUN / "SOURCE.md").read_text()


def test_the_add_a_study_page_shows_every_file_of_its_folder_whole():
    """Each file its folder listing names has a code block titled with its path (the plug-in
    test builds the study from those blocks: tests/test_pipeline.py), and the study it makes
    validates with the project's schema."""
    import re

    import yaml

    text = (REPO / "docs/adding-a-study.md").read_text()
    listing = re.search(r"^```\nsrc/transferlab/studies/toy/\n(.*?)^```$", text, re.M | re.S).group(1)
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    titled = dict(re.findall(r'^```\w+ title="([^"]+)"\n(.*?)^```$', text, re.M | re.S))
    assert {f"src/transferlab/studies/toy/{n}" for n in names} | {"params.yaml"} == set(titled), sorted(titled)
    schema = yaml.safe_load(titled["src/transferlab/studies/toy/params.schema.yaml"])["properties"]["toy"]
    import jsonschema

    project = params.load_yaml(REPO / "workflow/schemas/params.schema.yaml")
    jsonschema.validate(yaml.safe_load(titled["params.yaml"])["toy"], {**schema, "$defs": project["$defs"]})


def test_the_readme_is_a_front_door():
    """At most about 150 lines, and the picture it opens with is there."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "](docs/assets/report.png)" in readme and (REPO / "docs/assets/report.png").is_file()
