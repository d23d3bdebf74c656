"""benchmarks/realdata_scorecard.py --baselines: the real preset cut to its baseline arms must
still be a valid configuration that runs the very baseline runs of the whole preset."""

import sys

from transferlab import params as P
from transferlab.workspace import REPO, copy_pipeline

sys.path.insert(0, str(REPO / "benchmarks"))
from realdata_scorecard import trim_to_baselines  # noqa: E402


def test_the_real_preset_cut_to_its_baselines_is_valid_and_keeps_their_settings(tmp_path):
    copy_pipeline(tmp_path)  # the preset is validated against the copy's schema
    real = P.apply_preset(tmp_path / "params.yaml", "real")
    trimmed = P.validate(trim_to_baselines(P.validate(real)))
    # the baseline arms' own settings are untouched: the same runs as in the whole preset
    for study in ("pretext", "recipe", "transfer", "nlp"):
        for key in ("seeds", "model", "dataset", "datasets", "standin", "lm", "train"):
            if key in real[study]:
                assert trimmed[study][key] == real[study][key], (study, key)
    assert trimmed["semisup"]["samples_per_class"] == [max(real["semisup"]["samples_per_class"])]
    assert trimmed["semisup"]["augment"] == ["none"] and trimmed["recipe"]["heads"] == ["random"]
    assert trimmed["warmstart"]["optimizers"] == [real["warmstart"]["setup"]["optimizer"]]
    assert trimmed["warmstart"]["setup"] == real["warmstart"]["setup"]
    assert trimmed["transfer"]["modes"] == ["frozen"]
    # every other grid is down to one value
    ws = trimmed["warmstart"]
    assert all(len(ws[k]) == 1 for k in ("pretrain_epochs", "gammas", "widths", "depths", "remedies", "tune_lrs"))
