"""The report reads its extra tables only through aggregate's md5 index."""

import json

import pandas as pd
import pytest

from transferlab.figures import Tables
from transferlab.runs import file_digest


def test_report_refuses_a_plot_table_its_index_does_not_name(tmp_path):
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "summary.csv", index=False)
    pd.DataFrame({"b": [2]}).to_csv(tmp_path / "curves.csv", index=False)
    table = tmp_path / "tables/lr_find.csv"
    pd.DataFrame({"lr": [0.1, 1.0]}).to_csv(table, index=False)
    (tmp_path / "tables.json").write_text(json.dumps({"lr_find.csv": file_digest(table)}))
    assert Tables.read(tmp_path).tables["lr_find.csv"].lr.tolist() == [0.1, 1.0]
    table.write_text("lr\n0.5\n")  # edited (or left over from another run) after aggregation
    with pytest.raises(RuntimeError, match="lr_find.csv: missing or not the file its index"):
        Tables.read(tmp_path)
    table.unlink()
    with pytest.raises(RuntimeError, match="missing"):
        Tables.read(tmp_path)


def test_read_run_keeps_the_run_labels_over_summary_keys(tmp_path):
    """A warm-start length run is labelled by its pretraining length (epochs=40) and reports
    the epochs it trained (20): the label names the run, the summary value moves aside."""
    from transferlab.stages.aggregate import read_run

    (tmp_path / "r").mkdir()
    (tmp_path / "r/metrics.json").write_text(
        json.dumps(
            {
                "summary": {"epochs": 20, "test/acc": 0.5},
                "labels": {"extractor": "x", "epochs": 7},
                "history": [{"epoch": 1, "val/acc": 0.25}],
            }
        )
    )
    row, curves = read_run(tmp_path, {"dir": "r", "experiment": "length", "epochs": 40, "seed": 0})
    assert row["epochs"] == 40 and row["summary/epochs"] == 20 and row["extractor"] == "x" and row["test/acc"] == 0.5
    assert curves == [
        {
            "experiment": "length",
            "epochs": 40,
            "seed": 0,
            "extractor": "x",
            "epoch": 1,
            "metric": "val/acc",
            "value": 0.25,
        }
    ]


def test_a_single_seed_has_no_spread_and_two_seeds_are_flagged():
    from transferlab.figures import interval_text, mean_sd_table

    df = pd.DataFrame({"arm": ["a", "b", "b"], "acc": [0.5, 0.4, 0.6]})
    table = mean_sd_table(df, ["arm"], "acc")
    assert "| a     | 0.500" in table and "± 0.000" not in table and "0.500 ± 0.141" in table
    assert interval_text(float("nan"), float("nan"), 1) == ""
    assert interval_text(-1.256, 1.246, 2) == "[-1.256, +1.246] (only 2 seeds)"
    assert interval_text(-0.1, 0.2, 5) == "[-0.100, +0.200]"


def test_the_scorecard_figure_puts_each_unit_on_its_own_panel(tmp_path, monkeypatch):
    """Accuracy differences share a panel, in points; a gradient-noise row gets its own axis
    (on one axis its +-10 would flatten every accuracy interval to a dot at zero)."""
    from transferlab.stages import report

    figures = []
    monkeypatch.setattr(report, "save", lambda fig, out, name: figures.append(fig) or out / f"{name}.png")
    card = pd.DataFrame(
        {
            "claim": ["a.gap", "a.gap", "b.noise", "c.none"],
            "setting": ["x", "y", "z", "w"],
            "measure": ["warm - fresh, test acc.", "gain at s=1 - gain at s=4", "warm - fresh, gradient variance", "-"],
            "effect": [0.02, -0.01, 5.0, float("nan")],
            "ci_low": [0.01, -0.03, -1.0, float("nan")],
            "ci_high": [0.03, 0.01, 11.0, float("nan")],
            "sign": [">", "<", "<", ">"],
            "threshold": [0.0, 0.0, 0.0, 0.0],
            "verdict": ["reproduced", "inconclusive", "inconclusive", "not tested"],
        }
    )
    report.scorecard_figure(card, tmp_path)
    accuracy, noise = figures[0].axes[:2]
    assert len(figures[0].axes) == 2  # the row without an effect is left out
    assert accuracy.get_title(loc="left") == "accuracy difference (points)"
    assert [t.get_text() for t in accuracy.get_yticklabels()] == ["gap: x", "gap: y"]
    points = sorted(
        line.get_xdata()[0] for line in accuracy.lines if len(line.get_xdata()) == 1 and line.get_marker() == "o"
    )
    assert points == pytest.approx([-1.0, 2.0])  # in points
    assert "gradient" in noise.get_title(loc="left")


def test_a_claim_in_plain_words_says_what_happened_where_and_against_the_source():
    """The declared row is reported (here the second, though the first has the smaller p), with
    its verdict after Holm."""
    from transferlab.stages.report import claim_line

    rows = pd.DataFrame(
        {
            "claim": ["semisup.augment_helps"] * 3,
            "statement": ["Mixup helps at one sample per class."] * 3,
            "setting": ["collage, s=1", "mixup, s=1", "mixup, s=2"],
            "data": ["mnist (real) -> letters"] * 3,
            "measure": ["augmented - none, head test acc."] * 3,
            "effect": [0.01, 0.0006, float("nan")],
            "ci_low": [-0.02, -0.0024, float("nan")],
            "ci_high": [0.04, 0.0037, float("nan")],
            "p": [0.01, 0.6, float("nan")],
            "verdict": ["inconclusive", "inconclusive", "not tested"],
            "primary": [False, True, False],
            "source_effect": [float("nan"), 0.12, float("nan")],
            "source_verdict": ["the source gives no number", "excluded: smaller here", ""],
            "note": ["", "", "x"],
        }
    )
    assert claim_line(rows) == (
        "- **Mixup helps at one sample per class**: not reproduced on mnist (real) -> letters (declared row, "
        "mixup, s=1: +0.1 points [-0.2, +0.4], inconclusive); the source's +12.0 points is excluded: smaller here; "
        "1 setting(s) not tested."
    )


def test_the_many_tests_line_counts_what_survives_each_correction_per_family():
    from transferlab.stages.report import family_lines

    # four tested rows in two families: two verdicts, one of which survives Holm, both BY
    card = pd.DataFrame(
        {
            "family": ["a", "a", "b", "b"],
            "p": [0.001, 0.03, 0.4, 0.6],
            "p_holm": [0.002, 0.06, 0.8, 0.8],
            "p_by": [0.003, 0.045, 0.9, 0.9],
            "verdict_unadjusted": ["reproduced", "contradicted", "inconclusive", "inconclusive"],
        }
    )
    line = family_lines(card)[0]
    assert "4 rows were tested at 5% each (a 2; b 2;" in line and "about 0.2 verdicts would come by chance" in line
    assert "Of the 2 unadjusted verdicts (reproduced or contradicted), 1 survives Holm's" in line
    assert "; 2 survive Benjamini-Yekutieli's" in line
    card["p_holm"] = [0.004, 0.04, 0.8, 0.8]
    assert "2 survive Holm's" in family_lines(card)[0]
    assert family_lines(card.assign(p_holm=float("nan"))) == []  # nothing tested: no line


def test_scorecard_rows_are_labelled_with_their_whole_setting():
    from transferlab.stages.report import _tick

    long = "mnist -> synth_letters vs synth_letters -> synth_letters, s=16, no augmentation"
    label = _tick("semisup.cross_worse", long)
    assert label.replace("\n", " ") == f"cross_worse: {long}" and label.count("\n") == 1  # was cut at 55 characters
    assert _tick("warmstart.gap", "adam") == "gap: adam"
    assert _tick("x.y", "word " * 40).endswith(" ...") and _tick("x.y", "word " * 40).count("\n") == 1


def test_a_share_of_the_gap_reads_in_per_cent_and_an_unbounded_one_reads_none():
    from transferlab.stages.report import _effect, claim_line

    rows = pd.DataFrame(
        {
            "claim": ["warmstart.dash"] * 2,
            "statement": ["DASH recovers the gap."] * 2,
            "setting": ["DASH: vs the warm start", "DASH: share of the gap"],
            "data": ["cifar10 (real)"] * 2,
            "kind": ["difference", "share"],
            "measure": ["dash - base warm, test acc.", "(dash - warm) / (fresh - warm)"],
            "effect": [0.004, 0.6],
            "ci_low": [0.001, 0.3],
            "ci_high": [0.007, 0.9],
            "p": [0.01, 0.2],
            "verdict": ["reproduced", "inconclusive"],
            "primary": [False, True],
            "source_effect": [float("nan")] * 2,
            "source_verdict": ["", ""],
            "note": ["", ""],
        }
    )
    assert "(declared row, DASH: share of the gap: 60% [30%, 90%], inconclusive)" in claim_line(rows)
    assert _effect(rows.iloc[1]) == "60% [30%, 90%]"
    assert _effect(rows.iloc[1].copy().replace({0.3: float("nan")})) == "none readable (the gap may be 0)"
