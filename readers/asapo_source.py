"""ASAP::O source through the real asapo_consumer client: one consumer per worker, one group.

The consumer is created lazily inside the process that reads (it cannot be pickled), so the
source object itself can travel to a Dask worker. The token never appears in repr or logs.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from readers.message import RawMessage, Source

log = logging.getLogger(__name__)

NO_NEXT = "asapo_no_next"


class AsapoSource(Source):
    """Messages of one (beamtime, source, stream) for one consumer group.

    * ``wait_for_stream``: an empty or missing stream is never "at the end" (wait forever).
    * ``follow_next_stream``: at a finished stream, continue with the stream the producer named
      as its successor (CrystFEL has one fixed stream).
    * ``acks``: messages must be acknowledged (``acknowledge``) after their chunk is written;
      unacknowledged ones come back after ``resend_delay_ms`` (up to ``resend_attempts``).
    * ``done`` turns True after ``no_data_timeout`` seconds continuously at the end.
    """

    def __init__(self, endpoint: str, token: str | None = None, beamtime: str = "", source: str = "",
                 group: str = "", stream: str = "", *, wait_for_stream: bool = False,
                 no_data_timeout: float | None = 60.0, consumer_timeout: int = 500,
                 follow_next_stream: bool = False, acks: bool = False,
                 resend_delay_ms: int = 60000, resend_attempts: int = 3,
                 pipeline_step: str = "indexamajig") -> None:
        for name, value in (("beamtime", beamtime), ("source", source), ("group", group),
                            ("stream", stream), ("endpoint", endpoint)):
            if not value:
                raise ValueError(f"ASAP::O {name} not specified.")
        self.endpoint = endpoint
        self._token = token or ""
        self.beamtime = beamtime
        self.source = source
        self.group = group
        self.stream = stream
        self.wait_for_stream = wait_for_stream
        self.no_data_timeout = no_data_timeout
        self.consumer_timeout = int(consumer_timeout)
        self.follow_next_stream = follow_next_stream
        self.acks = acks
        self.resend_delay_ms = resend_delay_ms
        self.resend_attempts = resend_attempts
        self.pipeline_step = pipeline_step
        self._consumer = None
        self._end_since = None
        self.errors = 0

    @staticmethod
    def options_kwargs(opts) -> dict:
        """Constructor arguments from a readers.options.InputOptions (token file read here).

        Acknowledgements are always on: the flow acknowledges each message once its chunk is
        written, so a crash brings unwritten messages back.
        """
        from readers.options import read_token_file
        token = opts.asapo_token
        if opts.asapo_token_file:
            token = read_token_file(opts.asapo_token_file)
        return dict(endpoint=opts.asapo_endpoint, token=token, beamtime=opts.asapo_beamtime,
                    source=opts.asapo_source, group=opts.asapo_group, stream=opts.asapo_stream,
                    wait_for_stream=opts.asapo_wait_for_stream,
                    no_data_timeout=opts.no_data_timeout,
                    consumer_timeout=opts.asapo_consumer_timeout,
                    follow_next_stream=opts.asapo_follow_next_stream, acks=True)

    @classmethod
    def from_options(cls, opts) -> "AsapoSource":
        """The source an InputOptions describes."""
        return cls(**cls.options_kwargs(opts))

    def __repr__(self) -> str:
        return (f"AsapoSource(endpoint={self.endpoint!r}, token='***', beamtime={self.beamtime!r},"
                f" source={self.source!r}, group={self.group!r}, stream={self.stream!r})")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_consumer"] = None
        return state

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    @property
    def consumer(self):
        """The asapo_consumer PyConsumer, created on first use in this process."""
        if self._consumer is None:
            import asapo_consumer
            try:
                self._consumer = asapo_consumer.create_consumer(
                    self.endpoint, "auto", False, self.beamtime, self.source, self._token,
                    self.consumer_timeout, "auto", self.pipeline_step)
            except asapo_consumer.AsapoConsumerError as exc:
                raise ConnectionError("Cannot create ASAP::O consumer: "
                                      f"{self._redact(str(exc))}") from None
            if self.acks:
                self._consumer.set_resend_nacs(True, self.resend_delay_ms, self.resend_attempts)
        return self._consumer

    def next_message(self, timeout: float | None = None) -> RawMessage | None:
        """One get_next; None at the end of the stream or on an error (logged, retried next call).

        The wait is the consumer timeout (``--asapo-consumer-timeout``), not ``timeout``.
        """
        import asapo_consumer as ac
        consumer = self.consumer
        try:
            with warnings.catch_warnings():  # ordered get_next is deprecated but is CrystFEL's
                warnings.simplefilter("ignore", DeprecationWarning)
                data, meta = consumer.get_next(self.group, meta_only=False, stream=self.stream)
        except ac.AsapoStreamFinishedError as exc:
            nxt = getattr(exc, "next_stream", None)
            if self.follow_next_stream and nxt and nxt != NO_NEXT:
                log.info("ASAP::O stream %s finished; following it to %s", self.stream, nxt)
                self.stream = nxt
                self._mark(False)
            else:
                self._mark(True)
            return None
        except ac.AsapoEndOfStreamError:
            self._mark(self._stream_finished())
            return None
        except ac.AsapoConsumerError as exc:
            self.errors += 1
            log.warning("Couldn't get next ASAP::O record: %s", self._redact(str(exc)))
            return None
        self._mark(False)
        payload = data.tobytes() if isinstance(data, np.ndarray) else bytes(data or b"")
        user = meta.get("meta") or {}
        return RawMessage(serial=int(meta["_id"]), filename=str(meta.get("name", "")), event="//",
                          payload=payload, metadata=dict(user) if isinstance(user, dict) else {},
                          ack_id=(self.stream, int(meta["_id"])))

    def _stream_finished(self) -> bool:
        """End of stream: finished unless the stream is empty and we wait for it (CrystFEL)."""
        if not self.wait_for_stream:
            return True
        try:
            size = self.consumer.get_current_size(self.stream)
        except Exception as exc:  # noqa: BLE001 - CrystFEL treats a failed query as non-empty
            log.warning("Couldn't get stream size: %s", self._redact(str(exc)))
            return True
        return size != 0

    def acknowledge(self, message: RawMessage) -> None:
        """Tell ASAP::O this message's chunk is written; only with acks enabled."""
        if not self.acks or message.ack_id is None:
            return
        import asapo_consumer as ac
        stream, mid = message.ack_id
        try:
            self.consumer.acknowledge(self.group, mid, stream=stream)
        except ac.AsapoConsumerError as exc:
            log.warning("Couldn't acknowledge ASAP::O message %s: %s", mid,
                        self._redact(str(exc)))

    def close(self) -> None:
        self._consumer = None


def reset_group(endpoint: str, token: str | None, beamtime: str, source: str, group: str,
                stream: str, value: int = 0) -> None:
    """Move a group's last-read marker to ``value`` (0: the next read is message 1)."""
    import asapo_consumer
    consumer = asapo_consumer.create_consumer(endpoint, "auto", False, beamtime, source,
                                              token or "", 2000, "auto", "crystream")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        consumer.set_lastread_marker(group, value, stream)
