"""Study 1, pretext pretraining (MNIST family): rotation, noise, overlay or mixed targets, then
finetuning on few labels against training from scratch.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
