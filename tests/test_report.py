"""The report reads plot tables only through aggregate's md5 index."""

import json

import pandas as pd
import pytest

from transferlab.runs import file_digest
from transferlab.figures import Tables


def test_report_refuses_a_plot_table_its_index_does_not_name(tmp_path):
    (tmp_path / "plots").mkdir()
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "summary.csv", index=False)
    pd.DataFrame({"b": [2]}).to_csv(tmp_path / "curves.csv", index=False)
    table = tmp_path / "plots/lr_find.csv"
    pd.DataFrame({"lr": [0.1, 1.0]}).to_csv(table, index=False)
    (tmp_path / "plots.json").write_text(json.dumps({"lr_find.csv": file_digest(table)}))
    assert Tables.read(tmp_path).plots["lr_find.csv"].lr.tolist() == [0.1, 1.0]
    table.write_text("lr\n0.5\n")  # edited (or left over from another run) after aggregation
    with pytest.raises(RuntimeError, match="lr_find.csv: missing or not the file its index"):
        Tables.read(tmp_path)
    table.unlink()
    with pytest.raises(RuntimeError, match="missing"):
        Tables.read(tmp_path)
