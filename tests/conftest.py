"""Shared test setup.

Eight fake CPU devices are requested before JAX starts, so sharding tests can
build a real 8-way mesh; single-device tests simply use one of them.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data_dir() -> pathlib.Path:
  """The real-data folder: $MEDGEN_SHARED_DATA or ../shared/data."""
  path = pathlib.Path(
      os.environ.get("MEDGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
  if not path.is_dir():
    pytest.skip(f"real data folder {path} is absent "
                "(set MEDGEN_SHARED_DATA to run these tests)")
  return path
