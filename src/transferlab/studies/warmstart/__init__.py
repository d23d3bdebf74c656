"""Study 4, warm starting and plasticity (Ash & Adams 2019; Berariu et al. 2021) and remedies.

Everything of the study is here: its science (pure functions), its stages (entry points,
`@stage`, naming the runs they write), its claims and the baselines they presuppose (claims.py,
baselines.py), its reference jobs (references.py), its figures (figures.py), its params
sections (params.schema.yaml), and study.py, the plug-in that hands them to the shared stages
(transferlab.study; transferlab.catalog lists it). This file imports nothing, so importing one
module of the study does not import the others.
"""
