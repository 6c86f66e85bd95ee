"""Workers from a batch system through dask-jobqueue, configured by a small YAML file.

The file (see cluster/jobqueue-example.yaml) names the batch system, the keyword arguments of
its dask-jobqueue cluster class, and either a fixed number of jobs or adaptive bounds.
Workers run the same Python as the client unless ``cluster.python`` says otherwise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
           "lsf": "LSFCluster", "htcondor": "HTCondorCluster"}


class JobqueueConfigError(ValueError):
    """A jobqueue YAML file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class JobqueueConfig:
    system: str
    cluster: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None
    minimum_jobs: int | None = None
    maximum_jobs: int | None = None

    @property
    def adaptive(self) -> bool:
        return self.maximum_jobs is not None


def load_jobqueue_config(path: str) -> JobqueueConfig:
    """Read and check the YAML file; JobqueueConfigError says what and where."""
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except OSError as exc:
        raise JobqueueConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise JobqueueConfigError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise JobqueueConfigError(f"{path}: expected a mapping with 'system' and 'cluster'")
    unknown = set(raw) - {"system", "cluster", "jobs", "adapt"}
    if unknown:
        raise JobqueueConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} "
                                  "(allowed: system, cluster, jobs, adapt)")
    system = str(raw.get("system", "")).lower()
    if system not in SYSTEMS:
        raise JobqueueConfigError(f"{path}: system '{raw.get('system')}' is not one of "
                                  f"{', '.join(SYSTEMS)}")
    cluster = raw.get("cluster") or {}
    if not isinstance(cluster, dict):
        raise JobqueueConfigError(f"{path}: 'cluster' must be a mapping of keyword arguments")
    adapt = raw.get("adapt") or {}
    if not isinstance(adapt, dict) or set(adapt) - {"minimum_jobs", "maximum_jobs"}:
        raise JobqueueConfigError(f"{path}: 'adapt' takes minimum_jobs and maximum_jobs")
    jobs = raw.get("jobs")
    if jobs is None and not adapt:
        jobs = 1
    if jobs is not None and adapt:
        raise JobqueueConfigError(f"{path}: give 'jobs' or 'adapt', not both")
    return JobqueueConfig(system, dict(cluster), jobs,
                          adapt.get("minimum_jobs", 1 if adapt else None),
                          adapt.get("maximum_jobs"))


def jobqueue_cluster(config: JobqueueConfig, dashboard_address: str | None = None):
    """Start the dask-jobqueue cluster and ask for its jobs (or switch on adaptivity)."""
    import dask_jobqueue
    cls = getattr(dask_jobqueue, SYSTEMS[config.system])
    kwargs = dict(config.cluster)
    kwargs.setdefault("python", sys.executable)
    kwargs.setdefault("cores", 1)
    kwargs.setdefault("processes", 1)
    kwargs.setdefault("memory", "2GB")
    scheduler_options = dict(kwargs.pop("scheduler_options", {}) or {})
    if dashboard_address is not None:
        scheduler_options.setdefault("dashboard_address", dashboard_address)
    kwargs["scheduler_options"] = scheduler_options
    # keep glibc's dynamic mmap threshold usable in the workers (see cluster/local.py)
    kwargs["job_script_prologue"] = ["export MALLOC_MMAP_THRESHOLD_=67108864",
                                     *kwargs.get("job_script_prologue", [])]
    cluster = cls(**kwargs)
    if config.adaptive:
        cluster.adapt(minimum_jobs=config.minimum_jobs, maximum_jobs=config.maximum_jobs)
    else:
        cluster.scale(jobs=config.jobs)
    return cluster


def expected_workers(config: JobqueueConfig) -> int:
    """Workers to wait for before starting (at least one)."""
    per_job = int(config.cluster.get("processes", 1))
    jobs = config.jobs if config.jobs is not None else max(1, config.minimum_jobs or 1)
    return max(1, jobs * per_job)
