"""Running on an existing Dask scheduler (``--scheduler=ADDRESS``).

To get the crystream dashboard page on such a scheduler, start it with the page preloaded:
``dask scheduler --preload flows.dashboard`` (the module registers its page on import).
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s]+$|^[\w.\-\[\]:]+:\d+$")


def scheduler_address(address: str) -> str:
    """A scheduler address with its protocol, or ValueError naming what is wrong."""
    address = address.strip()
    if not _ADDRESS.match(address):
        raise ValueError(f"--scheduler: '{address}' is not a scheduler address "
                         "(expected e.g. tcp://host:8786 or host:8786)")
    return address if "://" in address else f"tcp://{address}"
