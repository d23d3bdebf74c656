"""Study 2, semi-supervised: pretraining on s labelled examples per class with none/mixup/collage,
then a new head on the frozen extractor for each target set.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
