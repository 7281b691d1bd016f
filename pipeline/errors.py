"""Errors the user is meant to read.

Every error that reaches the CLI is a ``PipelineError``: the CLI prints its
message (which names the file or key at fault and what to do) and exits 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """An error caused by input or configuration, with an actionable message."""


class ConfigError(PipelineError):
    """``params.yaml`` (or a CLI option) is missing, unknown or out of range."""


class InputError(PipelineError):
    """A source path or file cannot be used as given."""


class DownloadError(PipelineError):
    """A dataset could not be fetched, verified or unpacked (network, checksum, archive)."""
