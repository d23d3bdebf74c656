"""The language study's data stages: `corpus` (the LM's text) and `nli_data` (the NLI pairs),
from the sources params name (text.corpus, text.nli). They may download: they run where
Snakemake runs."""

from __future__ import annotations

import logging

from ... import paths
from ...runs import Job
from ...stage import stage
from . import text as text_data

log = logging.getLogger("transferlab.text")


def build_text(job: Job, what: str, build) -> None:
    """Build text.<what> with `build` into the job's output."""
    obj = build(job.params["text"][what], job.params["data"])
    text_data.save(obj, job.out)
    log.info("%s: %s, %s", text_data.describe(obj), {k: len(v) for k, v in obj["splits"].items()}, obj["meta"])


@stage(params=("data", "text.corpus"), out=paths.CORPUS, resources="local")
def corpus(job: Job) -> None:
    """Build the LM corpus (text.corpus)."""
    build_text(job, "corpus", text_data.build_corpus)


@stage(params=("data", "text.nli"), out=paths.NLI_DATA, resources="local")
def nli_data(job: Job) -> None:
    """Build the NLI set (text.nli)."""
    build_text(job, "nli", text_data.build_nli)
