"""Input options (indexamajig names, 0.12.0 defaults) and the checks on their combinations."""

from __future__ import annotations

from dataclasses import dataclass

from readers.errors import SourceOptionError

DATA_FORMATS = ("hdf5", "msgpack", "seedee", "cbf")
PAYLOAD_PEAK_METHODS = ("msgpack", "hdf5", "cxi")


@dataclass(frozen=True)
class InputOptions:
    """Everything the sources and decoders need; field names are the options with '_' for '-'.

    ``data_format=None`` means "detect from the bytes" (CrystFEL fails every frame instead).
    """

    data_format: str | None = None
    no_image_data: bool = False
    no_mask_data: bool = False
    serial_start: int = 1
    peaks: str = "zaef"
    half_pixel_shift: bool = True  # --no-half-pixel-shift sets False (as the peak options)
    copy_header: tuple[str, ...] = ()
    input: str | None = None
    prefix: str = ""  # -x/--prefix for names in the -i list
    wait_for_file: float = 0.0
    zmq_input: str | None = None
    zmq_subscribe: tuple[str, ...] | None = None
    zmq_request: str | None = None
    asapo_endpoint: str | None = None
    asapo_token: str | None = None
    asapo_token_file: str | None = None
    asapo_beamtime: str | None = None
    asapo_source: str | None = None
    asapo_group: str | None = None
    asapo_stream: str | None = None
    asapo_wait_for_stream: bool = False
    asapo_consumer_timeout: int = 500
    asapo_acks: bool = False
    asapo_follow_next_stream: bool = False
    no_data_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.data_format is not None and self.data_format not in DATA_FORMATS:
            raise SourceOptionError(f"Unrecognised data format '{self.data_format}'"
                                    f" (--data-format: one of {', '.join(DATA_FORMATS)})")

    def __repr__(self) -> str:  # never show the token
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if fields["asapo_token"] is not None:
            fields["asapo_token"] = "***"
        inner = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        return f"InputOptions({inner})"

    @property
    def no_half_pixel_shift(self) -> bool:
        return not self.half_pixel_shift

    @property
    def payload_peaks(self) -> bool:
        """True when peaks come with the data instead of from a peak search."""
        return self.peaks in PAYLOAD_PEAK_METHODS


def read_token_file(path: str) -> str:
    """The ASAP::O token from --asapo-token-file: the first non-empty line, stripped."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    return line.strip()
    except OSError as exc:
        raise SourceOptionError(f"{path}: cannot read ASAP::O token file ({exc.strerror})") from None
    raise SourceOptionError(f"{path}:1: ASAP::O token file is empty")
