"""Where the graph runs: the embedded local cluster, an existing scheduler, or a batch system.

``get_cluster`` knows nothing of crystallography: it returns a connected Client and, when it
started one, the cluster object to close at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distributed import Client


@dataclass
class ClusterHandle:
    """A connected client, the cluster it started (None for --scheduler) and how to end."""

    client: Client
    cluster: Any = None
    kind: str = "local"

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's address, or None when the scheduler runs none."""
        try:
            if "dashboard" not in self.client.scheduler_info(n_workers=0)["services"]:
                return None
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001 - no dashboard
            return None

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def get_cluster(workers: int = 1, scheduler: str | None = None, jobqueue: str | None = None,
                dashboard_address: str | None = "127.0.0.1:8787",
                wait_timeout: float = 300.0, local_directory: str | None = None) -> ClusterHandle:
    """A client on: ``scheduler`` if given, else a dask-jobqueue cluster from the ``jobqueue``
    YAML file, else a LocalCluster of ``workers`` single-threaded processes; it returns once
    at least one worker (``workers`` for a local cluster) is there."""
    if scheduler:
        from cluster.scheduler import scheduler_address
        client = Client(scheduler_address(scheduler), timeout="30s")
        client.wait_for_workers(1, timeout=wait_timeout)
        return ClusterHandle(client, None, "scheduler")
    if jobqueue:
        from cluster.jobqueue import expected_workers, jobqueue_cluster, load_jobqueue_config
        config = load_jobqueue_config(jobqueue)
        cluster = jobqueue_cluster(config, dashboard_address)
        client = Client(cluster)
        try:
            client.wait_for_workers(expected_workers(config), timeout=wait_timeout)
        except Exception:
            client.close()
            cluster.close()
            raise
        return ClusterHandle(client, cluster, f"jobqueue-{config.system}")
    from cluster.local import local_cluster
    cluster = local_cluster(workers, dashboard_address, local_directory=local_directory)
    client = Client(cluster)
    return ClusterHandle(client, cluster, "local")
