"""The embedded default: a LocalCluster of ``-j`` single-threaded worker processes."""

from __future__ import annotations

import dask
from distributed import LocalCluster

# Dask's nannies set MALLOC_TRIM_THRESHOLD_, which also switches off glibc's dynamic mmap
# threshold: every array of 128 kB or more is then mmap'ed and page-faulted afresh, which
# made frame processing ~70% slower in a worker than in a plain process. Leave it unset.
GLIBC_ENV = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(n_workers: int, dashboard_address: str | None = "127.0.0.1:8787",
                  host: str = "127.0.0.1", local_directory: str | None = None) -> LocalCluster:
    """``n_workers`` worker processes, one thread each (frames are CPU-bound and numba
    releases the GIL only inside kernels), scheduler on ``host``. The dashboard listens on
    ``dashboard_address`` (localhost by default; None: a free port on localhost, since the
    scheduler's HTTP server cannot be switched off). ``local_directory`` is the workers'
    scratch space (--temp-dir)."""
    with dask.config.set(GLIBC_ENV):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            host=host, scheduler_port=0,
                            dashboard_address=dashboard_address or "127.0.0.1:0",
                            local_directory=local_directory)
