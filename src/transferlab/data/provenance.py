"""Which data sources hold recorded data (as opposed to data rendered here).

Kept apart from the loaders in sources.py on purpose: the scorecard labels each result real or
stand-in from this name list alone, and DVC derives a stage's code deps from its imports, so an
edit to a loader or renderer must not mark the scorecard and report stale.
"""

# sources of recorded data (not rendered here): the ones the scorecard calls real, and the ones
# train_per_class / test_per_class cap (the rendered sources size themselves)
REAL_SOURCES = ("torchvision", "npz", "folder")
