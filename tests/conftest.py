"""Shared test setup.

Eight fake CPU devices are requested before JAX starts, so sharding tests can
build a real 8-way mesh; single-device tests simply use one of them.

Compilation is most of a JAX test's time, and many tests compile the same
tiny programs (each new task builds new closures, so jit's in-memory cache
misses). JAX's persistent compilation cache, enabled here for every test and
every subprocess a test starts, turns those repeats into disk reads. The
cache lives in .pytest_cache/ (ignored by git); deleting it is always safe.
"""

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]

_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  _flags += " --xla_force_host_platform_device_count=8"
# LLVM's optimisation passes are most of XLA:CPU's compile time, and a test's
# programs run for a few steps on tiny arrays: at level 0 a tiny VAE run's
# programs compile in 26 s instead of 100 s. MEDGEN_TEST_OPTIMIZE=1 tests the
# optimised programs users run.
if (os.environ.get("MEDGEN_TEST_OPTIMIZE", "") != "1"
    and "xla_backend_optimization_level" not in _flags):
  _flags += " --xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = _flags.strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(REPO / ".pytest_cache" / "jax_compilation_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import pytest  # noqa: E402

# GAN fields given to tiny_gan_config by their short name.
_GAN_FIELDS = ("loss", "d_steps", "ema_decay", "gp_weight", "conditional",
               "width", "latent_dim", "upsample", "d_norm", "r1_weight",
               "d_joint_batch", "g_width", "d_pack")


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
  """A GAN config small enough to train in seconds on CPU.

  Keyword arguments set fields: GAN fields by short name (loss="hinge"),
  others by dotted path (**{"train.steps": 3}).
  """
  from medgen_jax.configs import gan
  c = gan.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train = 256
  c.data.phantoms.num_val = 64
  c.data.phantoms.num_test = 64
  c.gan.width = 8
  c.gan.latent_dim = 8
  c.train.batch_size = 16
  c.train.steps = 6
  c.train.log_every = 2
  c.train.eval_every = 3
  c.train.checkpoint_every = 3
  c.train.num_samples = 4
  c.train.num_devices = 1
  c.train.progress = False
  for key, value in overrides.items():
    path = f"gan.{key}" if key in _GAN_FIELDS else key
    node = c
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.fixture
def tiny_config():
  return tiny_gan_config


@pytest.fixture(scope="session")
def tiny_gan_run(tmp_path_factory):
  """One uninterrupted 6-step tiny GAN run, shared by the tests that compare
  against it: {"out": train_and_evaluate's summary, "workdir": path}."""
  from medgen_jax.train.loop import train_and_evaluate
  workdir = tmp_path_factory.mktemp("tiny_gan") / "run"
  return {"out": train_and_evaluate(tiny_gan_config(), workdir),
          "workdir": workdir}


@pytest.fixture
def medgen(capsys):
  """Runs the `medgen` CLI in-process: medgen([...]) -> (code, stdout, stderr)."""
  from medgen_jax import cli

  def run(args):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err

  return run


@pytest.fixture(scope="session")
def leaves():
  """A state's leaves as numpy arrays, to compare two states bit for bit."""
  import jax
  import numpy as np
  return lambda state: [np.asarray(x) for x in jax.tree.leaves(state)]
