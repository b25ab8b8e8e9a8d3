"""The blob container: one versioned, checksummed, mmap-able file per model (DESIGN §3)."""

from edgeq.blob.reader import Blob, read_blob
from edgeq.blob.writer import write_blob

__all__ = ["Blob", "read_blob", "write_blob"]
