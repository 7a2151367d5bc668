"""Batch processing: measure (and track) a whole trial database on Dask, resumably.

:func:`run_batch` is the library call behind ``hairtrial run``: it queues every image
that lacks a done run for this package version × measurement config, runs one
claim-and-process loop per Dask worker thread (a LocalCluster by default, or an existing
scheduler by address), then tracks every site whose visits are all measured. See
:mod:`hairtrial.batch.runner` for the design and its failure semantics.

Importing this package does not import Dask, SQLAlchemy or the measurement code; they
load when a batch runs.
"""

from hairtrial.batch.runner import DEFAULT_LEASE_S, BatchSummary, run_batch
from hairtrial.batch.worker import ImageFailure, LoopResult, process_pending

__all__ = [
    "DEFAULT_LEASE_S",
    "BatchSummary",
    "ImageFailure",
    "LoopResult",
    "process_pending",
    "run_batch",
]
