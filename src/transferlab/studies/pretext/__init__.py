"""Study 1, pretext pretraining (MNIST family): rotation, noise, overlay or mixed targets, then
finetuning on few labels against training from scratch.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
