"""Test perplexity of the study-5 LM on the real WikiText-2 test split in ../shared/realdata.

The snapshot there has WikiText-2 (v1, tokenized: wiki.{valid,test}.tokens) validation and
test splits only; its 2M-token training split is absent. So the LM trains on the first 90% of
the *validation* split (about 196k tokens), validates on its last 10%, and is tested on the
untouched test split. Its vocabulary is that training text's (not WikiText's 33,278 words):
test words outside it count as <unk>, so the number is not comparable to published
perplexities (AWD-LSTM 65.6 trained on the full 2M tokens); it measures this pipeline on real
text. The data goes through the real loading path: HF datasets' `text` builder, `transferlab
corpus`, `transferlab lm`, through Snakemake.

    python benchmarks/realdata_wikitext.py --work /tmp/realwt [--realdata ../shared/realdata]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from transferlab import params as P  # noqa: E402
from transferlab.workspace import copy_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.002, help="Adam's LR")
    ap.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    wt = (a.realdata / "wikitext2").resolve()
    p = P.load_yaml(REPO / "params.yaml")
    p["run"]["progress"] = False
    p["text"]["corpus"] = {
        "source": "hf",
        "path": "text",
        "val_fraction": 0.1,
        "data_files": {"train": str(wt / "valid.txt"), "test": str(wt / "test.txt")},
    }
    # WikiText's files are tokenized already: split on whitespace, keep case, keep every word seen
    p["nlp"]["tokenizer"] = {"kind": "whitespace", "lowercase": False, "max_vocab": 100000, "min_freq": 1}
    p["nlp"]["lm"].update(emb=a.width, hidden=a.width, epochs=a.epochs, dropout=0.3, lr=a.lr)
    copy_pipeline(work, p)
    target = "results/nlp/lm/s0/metrics.json"
    t0 = time.time()
    subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "--cores", str(a.cores), target], cwd=work, check=True
    )
    m = json.loads((work / target).read_text())
    s = m["summary"]
    print(
        f"\nWikiText-2 (real; trained on 90% of its validation split, {s['data/train_tokens']:.0f} tokens), "
        f"LSTM 1x{a.width}, tied, Adam lr {a.lr}, {a.epochs} epochs, "
        f"{time.time() - t0:.0f} s wall on {a.cores} cores"
    )
    print("epoch  train ppl  val ppl")
    for row in m["history"]:
        print(f"{row['epoch']:5d}  {row['train/ppl']:9.1f}  {row['val/ppl']:7.1f}")
    print(
        f"test perplexity {s['test/ppl']:.1f} (vocabulary {s['data/vocab']:.0f}, test <unk> rate "
        f"{s['data/test_unk_rate']:.2%}, test tokens {s['data/test_tokens']:.0f})"
    )


if __name__ == "__main__":
    main()
