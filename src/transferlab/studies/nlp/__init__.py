"""Study 5b, language: an RNN language model, MNLI on its encoder, MNLI with BERT.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
