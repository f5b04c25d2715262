"""Helpers of the file-reader tests (imported by them; not a test module)."""

import pytest

from medgen_jax.errors import DataError


def raises_one_line(fn, *args, **kwargs):
  """Runs fn, expects a DataError, returns its one-line message."""
  with pytest.raises(DataError) as info:
    fn(*args, **kwargs)
  message = str(info.value)
  assert "\n" not in message
  return message


def write_file(tmp_path, name, text, newline="\n"):
  """Writes `text` to tmp_path/name with the given line ends."""
  path = tmp_path / name
  path.write_bytes(text.replace("\n", newline).encode())
  return path
