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


def tiny_gan_config(**overrides):
  """A GAN config small enough to train in seconds on CPU."""
  from medgen_jax.configs import gan
  c = gan.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train = 256
  c.data.phantoms.num_val = 64
  c.data.phantoms.num_test = 64
  c.model.width = 8
  c.model.latent_dim = 8
  c.train.batch_size = 16
  c.train.steps = 6
  c.train.log_every = 2
  c.train.sample_every = 3
  c.train.checkpoint_every = 3
  c.train.num_samples = 4
  c.train.num_devices = 1
  c.train.progress = False
  for key, value in overrides.items():
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.fixture
def tiny_config():
  return tiny_gan_config
