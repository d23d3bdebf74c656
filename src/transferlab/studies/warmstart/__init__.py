"""Study 4, warm starting and plasticity (Ash & Adams 2019; Berariu et al. 2021) and remedies.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
