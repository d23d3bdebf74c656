"""Study 5a, vision transfer: an ImageNet ResNet-18 (or the offline stand-in), frozen or unfrozen,
on few MNIST labels.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`), its runs and tables (tables.py) and its figures (figures.py). Kept free of
imports: importing one module of the study imports no other.
"""
