"""The flow's configuration: one small immutable object built once from the command line.

It travels to every worker (pickled once per worker), so it holds only plain values and the
stage option dataclasses, never open files, sockets or parsed geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

SOURCE_KINDS = ("files", "zmq_sub", "zmq_req", "asapo")


@dataclass(frozen=True)
class FlowConfig:
    """Everything a run needs: input, output, cluster, limits, stage options, file paths.

    ``source`` is one of SOURCE_KINDS; ``input`` is a ``readers.options.InputOptions`` with the
    source parameters (-i list, --zmq-*, --asapo-*, --data-format ...); ``pipeline`` is a
    ``crystream.pipeline.PipelineConfig`` holding the stage options.
    ``connections`` is how many ingest actors pull from the source (None: one per worker for
    files, REQ and ASAP::O; always exactly one for SUB).
    ``max_in_flight`` bounds frames received but not yet written (None: 16 per worker).
    """

    source: str
    geometry: str
    output: str  # path, or "-" for standard output
    input: Any = None  # readers.options.InputOptions
    pipeline: Any = None  # crystream.pipeline.PipelineConfig
    cell: str | None = None  # -p/--pdb
    workers: int = 1  # -j
    scheduler: str | None = None  # --scheduler ADDRESS
    jobqueue: str | None = None  # --jobqueue YAML
    dashboard_address: str | None = "127.0.0.1:8787"
    max_in_flight: int | None = None
    connections: int | None = None
    command_line: tuple[str, ...] = ("crystream",)  # argv, for the stream header
    indexing_methods: str | None = None  # the --indexing string, None if auto-detected
    progress: bool = True  # live line on stderr
    log_errors: bool = True  # one line per failed frame on stderr
    frames_limit: int | None = None  # stop after this many frames (demo, tests)
    temp_dir: str | None = None  # --temp-dir: the local workers' scratch directory
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCE_KINDS:
            raise ValueError(f"FlowConfig.source: unknown source kind '{self.source}' "
                             f"(one of {', '.join(SOURCE_KINDS)})")
        if self.workers < 1:
            raise ValueError("FlowConfig.workers (-j) must be at least 1")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError("FlowConfig.max_in_flight must be at least 1")

    @property
    def in_flight_limit(self) -> int:
        """Frames received but not yet written, at most (default 16 per worker)."""
        return self.max_in_flight or 16 * self.workers

    def n_connections(self, n_workers: int) -> int:
        """Ingest actors to start: one for SUB, else one per worker unless set."""
        if self.source == "zmq_sub":
            return 1
        return max(1, self.connections or n_workers)

    def with_(self, **changes: Any) -> "FlowConfig":
        return replace(self, **changes)
