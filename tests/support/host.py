"""What the machine can tell a test: a loopback port to hand a child process, this process's memory."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A loopback port nothing listens on just now, for a process that must be told its port up front."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
