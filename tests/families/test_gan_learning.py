"""The GAN learns: generated phantoms move toward the data's statistics.

Two statistics of held-out phantoms (16x16): the 1-D Wasserstein distance
between pixel-intensity distributions, and the squared distance between mean
images. An untrained generator (tanh outputs near 0, no body outline) is far
from the data on both (W1 ~0.34, mean-image MSE ~0.31); after 300 steps they
were 0.04 and 0.002 when this test was written, so the bounds below leave a
wide margin while still failing for a generator that has not learned.
"""

import jax
import numpy as np

from medgen_jax.data.pipeline import uint8_to_unit_range
from medgen_jax.train.loop import train_and_evaluate
from medgen_jax.families.gan import GanTask


def wasserstein_1d(a, b):
  """W1 between two equal-size 1-D samples: mean |sorted(a) - sorted(b)|."""
  return float(np.mean(np.abs(np.sort(a.ravel()) - np.sort(b.ravel()))))


def _stats(task, state, real):
  z, labels = task.grid_inputs(len(real), seed=123)
  fake = task.sample(state, z, labels)
  return (wasserstein_1d(fake, real),
          float(np.mean((fake.mean(0) - real.mean(0)) ** 2)))


def test_gan_learns_phantom_statistics(tiny_config, tmp_path):
  config = tiny_config()
  config.data.phantoms.num_train = 1024
  config.data.phantoms.num_val = 256
  config.gan.width = 16
  config.gan.latent_dim = 16
  config.train.batch_size = 32
  config.optimizer.learning_rate = 1e-3
  config.gan.ema_decay = 0.99
  config.train.steps = 300
  config.train.log_every = 100
  config.train.eval_every = 300
  config.train.checkpoint_every = 300
  out = train_and_evaluate(config, tmp_path / "run")

  task = GanTask(config)  # config now resolved; no dataset needed
  from medgen_jax.data.registry import load_dataset
  val = load_dataset(config.data).split("val")
  real = uint8_to_unit_range(val["image"])  # held-out images, [-1, 1]

  untrained = task.init_state(jax.random.key(config.seed))
  w_before, m_before = _stats(task, untrained, real)
  w_after, m_after = _stats(task, out["state"], real)
  assert w_after < 0.3 * w_before, (w_before, w_after)
  assert m_after < 0.1 * m_before, (m_before, m_after)
  # And in absolute terms the intensity distribution is close.
  assert w_after < 0.1, w_after
