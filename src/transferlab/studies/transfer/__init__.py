"""Study 5a, vision transfer: an ImageNet ResNet-18 (or the offline stand-in), frozen or unfrozen,
on few MNIST labels.

Everything of the study is in this folder; study.py hands it to the shared stages (what each
file holds: transferlab.study). This file imports nothing.
"""
