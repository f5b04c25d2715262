"""Errors a user can act on.

Every error that a user's input can cause (a missing file, a wrong shape, an
unknown name, a non-finite loss) is a `MedgenError`. Its message is one line
that names the file or argument, says what was expected and how to fix it.
The CLI prints it as `medgen: error: <message>` and exits non-zero; anything
else is a bug in medgen_jax and keeps its traceback.
"""

from __future__ import annotations


class MedgenError(Exception):
  """Base class of every user-facing error."""

  exit_code = 1


class ConfigError(MedgenError):
  """A configuration value or command-line argument is invalid."""

  exit_code = 2


class UnknownNameError(ConfigError):
  """A name (dataset, loss, model, optimizer) is not in its registry."""


class DataError(MedgenError):
  """A data file or array does not match the expected schema."""

  exit_code = 3


class DownloadError(DataError):
  """A dataset could not be fetched or its checksum did not match."""


class CheckpointError(MedgenError):
  """A workdir or checkpoint is missing, incompatible or unreadable."""

  exit_code = 4


class NonFiniteLossError(MedgenError):
  """Training produced a NaN or infinite loss; the run was stopped."""

  exit_code = 5

  def __init__(self, message: str, step: int):
    super().__init__(message)
    self.step = step
