"""Errors the user is meant to read.

Every error that reaches the CLI is a ``PipelineError``: the CLI (and a DVC stage)
prints its message (which names the file or key at fault and what to do) and
exits with its ``exit_code``, without a traceback: 2 for bad input or
configuration, 3 when ingest lost data the user has not accepted
(``DataLossError``). Anything else is a bug and keeps its traceback.
"""


class Refusal(Exception):
    """One input refused: ``reason`` a short stable code, ``detail`` the specifics (the
    fields of a quarantine row). Not a ``PipelineError``: the caller decides whether the
    input is quarantined or the command stops."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PipelineError(Exception):
    """An error caused by input or configuration, with an actionable message."""

    exit_code = 2


class ConfigError(PipelineError):
    """``params.yaml`` (or a CLI option) is missing, unknown or out of range."""


class InputError(PipelineError):
    """A source path or file cannot be used as given."""


class DownloadError(PipelineError):
    """A dataset could not be fetched, verified or unpacked (network, checksum, archive)."""


class DataLossError(PipelineError):
    """Ingest would lose data (``pipeline.ingest.loss``) and ``ingest.on_loss`` is ``error``."""

    exit_code = 3
