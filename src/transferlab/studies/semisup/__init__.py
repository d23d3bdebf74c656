"""Study 2, semi-supervised: pretraining on s labelled examples per class with none/mixup/collage,
then a new head on the frozen extractor for each target set.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
