"""Study 3, the supervised recipe: LR finder, warmup + cosine, EMA/Polyak with BatchNorm
recalibration, rotation pretext with a linear probe, head warm start.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
