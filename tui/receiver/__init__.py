"""OTLP receivers (gRPC and HTTP) that decode at the edge into :mod:`tui.model` spans.

Never imports Textual: the receivers run the same under the app and under ``--print``.
"""

from tui.receiver.errors import PortUnavailable, ReceiverConfigError
from tui.receiver.ingest import Ingest, ReceiverStats, SpanQueue
from tui.receiver.security import Security
from tui.receiver.service import OtlpReceivers, ReceiverConfig, pump

__all__ = ["Ingest", "OtlpReceivers", "PortUnavailable", "ReceiverConfig", "ReceiverConfigError", "ReceiverStats",
           "Security", "SpanQueue", "pump"]
