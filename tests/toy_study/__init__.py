"""A toy study: nearest centroid on the pixels against the majority class. The worked example of
docs/adding-a-study.md; tests/test_pipeline.py copies this folder to src/transferlab/studies/toy/,
adds one line to transferlab/catalog.py and runs it through both runners to a scorecard row."""
