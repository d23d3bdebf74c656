"""Study 3, the supervised recipe: LR finder, warmup + cosine, EMA/Polyak with BatchNorm
recalibration, rotation pretext with a linear probe, head warm start.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
