"""Refresh what the README and the documentation site show of a finished run of the embedded
default, from that run's own files (nothing typed by hand):

- docs/assets/report.png: a screenshot of its reports/report.html opened at the Scorecard entry
  (the forest plot of every claim; the report's landing page is Snakemake's drawing of the
  DAG), taken by headless Chromium: the picture on the README's first screen;
- docs/assets/default-run/: its results/scorecard.csv and results/baselines.csv, its
  reports/figures/*.png, and SOURCE.md naming the commit and command that made them (the site's
  scorecard page and each study's figures are generated from these when it is built);
- docs/assets/real/scorecard.png: the forest plot of the real preset's scorecard, drawn from
  benchmarks/results/rescore_floors_real.csv by the report's own function.

    python scripts/refresh_docs_assets.py --work DIR   # DIR: a clone where `bash scripts/main.sh` finished

Run it after a change that moves a number or a figure of the default (the tests check that the
copied scorecard has the columns the scorecard writes now).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS_ASSETS = ROOT / "docs/assets"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 900)  # the report's first screen, as a laptop shows it
# What a reader would click first: the Scorecard category and its figure (Snakemake's report
# app: app.showCategory and the view its result list sets for an image).
OPEN_SCORECARD = """<script>
setTimeout(() => app.showCategory("Scorecard"), 200);
setTimeout(() => {
  const path = "reports/figures/scorecard.png";
  app.setView({content: "img", contentPath: results[path].data_uri, resultPath: path});
}, 500);
setTimeout(() => {  // its top, not its middle: the figure is taller than the screen
  const img = document.querySelector('img[src^="data:image/png"]');
  for (let el = img && img.parentElement; el && el !== document.body; el = el.parentElement) {
    el.style.alignItems = "flex-start";
    el.scrollTop = 0;
  }
}, 900);
</script>"""


def fail(message: str) -> None:
    sys.exit(f"refresh_docs_assets: {message}")


def screenshot(html: Path, dest: Path) -> None:
    """The report at its scorecard, as a PNG, by headless Chromium (no network, no profile kept)."""
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        fail(f"no Chromium on PATH (looked for {', '.join(BROWSERS)}); on Debian: apt install chromium")
    page = html.read_text()
    if "</body>" not in page or '"reports/figures/scorecard.png"' not in page:
        fail(f"{html}: not a Snakemake report with the scorecard figure")
    with tempfile.TemporaryDirectory() as profile:
        opened = Path(profile) / "report.html"  # the same page, told to open the scorecard
        head, _, tail = page.rpartition("</body>")  # the last: the page's own (scripts hold others)
        opened.write_text(head + OPEN_SCORECARD + "</body>" + tail)
        tmp = dest.with_name(f".{dest.name}.tmp.png")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--virtual-time-budget=5000",  # let the report's scripts draw the page first
            f"--screenshot={tmp}",
            opened.as_uri(),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0 or not tmp.is_file():
            fail(f"{browser} could not screenshot {html}: {res.stderr[-500:]}")
        tmp.replace(dest)


def copy_run(work: Path, dest: Path) -> None:
    """The run's scorecard, baselines and figures, with where they came from."""
    needed = [work / "results/scorecard.csv", work / "results/baselines.csv", work / "reports/figures"]
    for path in needed:
        if not path.exists():
            fail(f"{path} is missing: run `bash scripts/main.sh` in {work} first")
    commit = subprocess.run(
        ["git", "-C", str(work), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staged = Path(tmp) / "default-run"
        (staged / "figures").mkdir(parents=True)
        for path in needed[:2]:
            shutil.copy2(path, staged / path.name)
        for png in sorted((work / "reports/figures").glob("*.png")):
            shutil.copy2(png, staged / "figures" / png.name)
        (staged / "SOURCE.md").write_text(
            f"From a run of the embedded default (`params.yaml`) at commit `{commit or 'unknown'}`: "
            "`bash scripts/main.sh` on a fresh clone, copied by `scripts/refresh_docs_assets.py`.\n"
        )
        if dest.exists():
            shutil.rmtree(dest)
        staged.rename(dest)  # whole, or not at all


def real_forest_plot(dest: Path) -> None:
    import pandas as pd

    from transferlab.stages.report import scorecard_figure

    card = pd.read_csv(ROOT / "benchmarks/results/rescore_floors_real.csv", keep_default_na=False, na_values=[""])
    dest.mkdir(parents=True, exist_ok=True)
    scorecard_figure(card, dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT, help="a clone where scripts/main.sh finished")
    args = parser.parse_args()
    report = args.work / "reports/report.html"
    if not report.is_file():
        fail(f"{report} is missing: run `bash scripts/main.sh` in {args.work} first")
    DOCS_ASSETS.mkdir(exist_ok=True)
    screenshot(report, DOCS_ASSETS / "report.png")
    copy_run(args.work, DOCS_ASSETS / "default-run")
    real_forest_plot(DOCS_ASSETS / "real")
    print(f"refreshed {DOCS_ASSETS.relative_to(ROOT)} from {args.work}")


if __name__ == "__main__":
    main()
