"""Corpus-scale jobs: streaming, locked, resumable, sharded with torch.distributed."""

from captum_sigma.jobs.dataset_job import (
    BatchExplainer,
    DatasetJob,
    JobInterrupted,
    JobMismatchError,
    JobSummary,
)
from captum_sigma.jobs.distributed import ProcessGroup, init_process_group
from captum_sigma.jobs.lock import FolderLock, FolderLockedError

__all__ = [
    "BatchExplainer",
    "DatasetJob",
    "FolderLock",
    "FolderLockedError",
    "JobInterrupted",
    "JobMismatchError",
    "JobSummary",
    "ProcessGroup",
    "init_process_group",
]
