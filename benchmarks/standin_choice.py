"""Choose the offline stand-in for ImageNet features by one rule: its frozen features, with the
transfer study's linear head on k labels per class, against the pixel references on the same
labels (logistic regression and k-NN, transferlab.references). Only the frozen arm is read.

    python benchmarks/standin_choice.py --work DIR [--target-params P] [--candidates synth_letters shapes ...]

Each candidate data set (a key of params.yaml's datasets) trains the stand-in ResNet-18 once
(seed 0, the transfer_standin stage's command), then the frozen head runs on every seed's k
labels of the target (transfer_finetune, mode frozen); the references run on the same draws
(transfer_references). --target-params: a params file whose `transfer` section and target data
set to use (e.g. the real preset's, with its prepared MNIST under --target-data); by default the
repository's params.yaml (the embedded default's digits). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> float:
    start = time.time()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--target-params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--target-data", type=Path, help="the target's prepared .pt (default: prepared here)")
    ap.add_argument("--candidates", nargs="+", default=["shapes", "synth_letters", "synth_digits"])
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    (work / "workflow").unlink(missing_ok=True)
    (work / "workflow").symlink_to(REPO / "workflow")  # the params schema
    default = yaml.safe_load((REPO / "params.yaml").read_text())
    target = yaml.safe_load(args.target_params.read_text())
    tf = target["transfer"]
    k = tf["labels_per_class"][0]
    data = args.target_data
    rows = []
    for source in args.candidates:
        p = {
            **target,
            "datasets": {**target["datasets"], source: default["datasets"][source]},
            "transfer": {
                **tf,
                "weights": "standin",
                "modes": ["frozen"],
                "standin": {**tf["standin"], "dataset": source},
            },
        }
        params = work / f"params_{source}.yaml"
        params.write_text(yaml.safe_dump(p))
        tl = ["transferlab"]
        if data is None:
            data = work / f"data/{tf['dataset']}.pt"
            run([*tl, "prepare", "--params", str(params), "--dataset", tf["dataset"], "--out", str(data)], work)
        run([*tl, "prepare", "--params", str(params), "--dataset", source, "--out", f"data/{source}.pt"], work)
        run(
            [
                *tl,
                "transfer_subsample",
                "--params",
                str(params),
                "--data",
                str(data),
                "--k",
                str(k),
                "--out",
                f"subsets/k{k}",
            ],
            work,
        )
        t_standin = run(
            [
                *tl,
                "transfer_standin",
                "--params",
                str(params),
                "--data",
                f"data/{source}.pt",
                "--checkpoint",
                f"ck/{source}",
                "--out",
                f"standin/{source}",
            ],
            work,
        )
        t_head = run(
            [
                *tl,
                "transfer_finetune",
                "--params",
                str(params),
                "--data",
                f"subsets/k{k}",
                "--standin",
                f"standin/{source}/model.pt",
                "--k",
                str(k),
                "--checkpoint",
                f"ck/ft_{source}",
                "--out",
                f"ft/{source}",
            ],
            work,
        )
        run(
            [
                *tl,
                "transfer_references",
                "--params",
                str(params),
                "--data",
                str(data),
                "--k",
                str(k),
                "--out",
                f"refs/{source}.csv",
            ],
            work,
        )
        own = json.loads((work / f"standin/{source}/metrics.json").read_text())["summary"]["test/acc"]
        frozen = [
            json.loads(f.read_text())["summary"]["test/acc"]
            for f in sorted((work / f"ft/{source}").glob("linear_frozen/s*/metrics.json"))
        ]
        refs = pd.read_csv(work / f"refs/{source}.csv").groupby("reference").value.mean()
        best = refs.max()
        rows.append(
            {
                "stand-in data": source,
                "its own test acc.": round(own, 3),
                "frozen + linear head (mean of seeds)": round(statistics.mean(frozen), 3),
                "per seed": ", ".join(f"{v:.3f}" for v in frozen),
                "logreg pixels": round(refs["logreg_pixels"], 3),
                "k-NN pixels": round(refs["knn_pixels"], 3),
                "clears": "yes" if statistics.mean(frozen) >= best else "no",
                "stand-in s": round(t_standin),
                "heads s": round(t_head),
            }
        )
        print(pd.DataFrame(rows).to_markdown(index=False), flush=True)


if __name__ == "__main__":
    main()
