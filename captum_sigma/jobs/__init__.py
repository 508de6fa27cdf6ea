"""Corpus-scale jobs: streaming, resumable, sharded with torch.distributed."""

from captum_sigma.jobs.dataset_job import BatchExplainer, DatasetJob, JobSummary
from captum_sigma.jobs.distributed import ProcessGroup, init_process_group

__all__ = [
    "BatchExplainer",
    "DatasetJob",
    "JobSummary",
    "ProcessGroup",
    "init_process_group",
]
