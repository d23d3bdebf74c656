"""Study 4, warm starting and plasticity (Ash & Adams 2019; Berariu et al. 2021) and remedies.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
