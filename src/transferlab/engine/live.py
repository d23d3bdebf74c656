"""A run's dvclive folder, written epoch by epoch while it trains."""

from __future__ import annotations

import functools
from pathlib import Path

from ..io import atomic_dir


class Live:
    """A run's dvclive folder, written while it trains: one step per epoch, so `dvc plots show
    <folder>/plots/metrics` (or VS Code's DVC extension) draws a running job's curves.

    A resumed run replays its checkpoint's history into a fresh folder before it goes on,
    rather than appending with dvclive's `resume=True`: an epoch logged but not checkpointed
    before a kill is then not counted twice, and the folder always equals the history."""

    def __init__(self, out_dir: Path | None):
        self.out_dir = Path(out_dir) if out_dir else None
        self.live = None  # the open dvclive logger while training

    @staticmethod
    def _open(folder: Path):
        from dvclive import Live as DvcLive
        from dvclive.plots import Metric

        class AppendingMetric(Metric):
            """dvclive 3.49's Metric rebuilds its .tsv path and mkdirs its folder twice per row
            (half the time of logging a value); the path is fixed, so build it once."""

            @functools.cached_property
            def output_path(self) -> Path:
                return super().output_path

        class OfflineLive(DvcLive):
            """dvclive 3.49 builds a DVC Studio payload at every step, re-reading every metric's
            .tsv (O(epochs x metrics) per step), before it checks whether Studio is set up at all;
            with no Studio config nothing would be sent, so skip the payload. With 22 metrics it
            was two thirds of the time of a step."""

            def post_data_to_studio(self):
                if self._dvc_studio_config:  # dvclive's own: None unless a Studio token is configured
                    super().post_data_to_studio()

            def end(self):
                # The last thing dvclive's end() does is remove the VS Code extension's step
                # signal, one file per repository (.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED),
                # after checking that it exists. Parallel jobs share it: one removed it between
                # another's check and removal, and that job failed after its run was complete.
                try:
                    super().end()
                except FileNotFoundError as e:
                    if not str(e.filename or "").endswith("DVCLIVE_STEP_COMPLETED"):
                        raise

            def log_metric(self, name, val, timestamp=False, plot=True):
                if name not in self._metrics:  # dvclive's own registry; it would make a plain Metric
                    self._metrics[name] = AppendingMetric(name, self.plots_dir)
                super().log_metric(name, val, timestamp, plot)

        return OfflineLive(str(folder), save_dvc_exp=False, dvcyaml=None, report=None)

    def start(self, history: list[dict]) -> None:
        """Open the folder for a run that has trained `history` so far (empty: a fresh run)."""
        if self.out_dir is not None:
            self.live = self._open(self.out_dir)
            for row in history:
                self.log(row)

    def log(self, row: dict) -> None:
        """One epoch's history row: a step of every metric in it."""
        if self.live is None:
            return
        for k, v in row.items():
            if k != "epoch":
                self.live.log_metric(k, v)
        self.live.next_step()

    def write(self, history: list[dict], summary: dict[str, float]) -> None:
        """The finished folder: the open logger's summary, or (a run trained outside `fit`) the
        whole history written at once, atomically."""
        if self.out_dir is None:
            return
        if self.live is not None:
            for k, v in summary.items():
                self.live.log_metric(k, v, plot=False)
            self.live.end()
            self.live = None
            return
        with atomic_dir(self.out_dir) as tmp:
            self.live = self._open(tmp)
            for row in history:
                self.log(row)
            self.write(history, summary)
