"""Study 5b, language: an RNN language model, MNLI on its encoder, MNLI with BERT.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
