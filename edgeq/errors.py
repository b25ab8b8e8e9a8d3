"""One exception type for user-facing failures: the CLI prints its message on one line."""


class EdgeqError(Exception):
    """A failure caused by input, a device or the environment, not by a bug in edgeq.

    `exit_code` follows docs/exit-codes.md: 2 bad input (blob, model, target, option),
    3 device/transport failure, 4 accuracy check failed, 5 build/toolchain failure.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BlobError(EdgeqError):
    """A blob file is corrupt, truncated, from a newer version or otherwise unreadable."""


class DeviceError(EdgeqError):
    """A device or transport failed (unreachable, refused, disappeared, timed out)."""

    exit_code = 3


class AccuracyError(EdgeqError):
    """Device outputs disagree with the host reference beyond the format's tolerance."""

    exit_code = 4


class BuildError(EdgeqError):
    """A toolchain or build step failed."""

    exit_code = 5
