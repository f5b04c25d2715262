"""The GAN family: models, state, step and outputs for the generic loop.

See train/tasks.py for what a task provides.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import gan as gan_config
from medgen_jax.data.base import ImageDataset
from medgen_jax.data.pipeline import BatchSampler, uint8_to_unit_range
from medgen_jax.errors import ConfigError
from medgen_jax.models.gan import D_NORMS, Discriminator, Generator
from medgen_jax.models.layers import UPSAMPLE_KINDS, num_resolution_stages
from medgen_jax.objectives.minimax import GAN_LOSSES
from medgen_jax.outputs import save_image_grid
from medgen_jax.train import steps
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import GANState, TrainState
from medgen_jax.train.tasks import TASKS

def resolve_gan_config(config, num_classes: int, channels: int) -> None:
  """Validates a GAN config in place and records data-derived fields.

  Sets config.model.channels, config.model.num_classes (0 when
  unconditional) and config.model.d_norm ("auto" resolved).
  """
  GAN_LOSSES.get(config.loss)
  m = config.model
  try:
    num_resolution_stages(config.data.image_size)
  except ValueError as e:
    raise ConfigError(f"--image-size: {e}") from None
  if m.upsample not in UPSAMPLE_KINDS:
    raise ConfigError(f"model.upsample {m.upsample!r}; expected one of "
                      f"{UPSAMPLE_KINDS}")
  if m.d_norm == "auto":
    m.d_norm = "layer" if GAN_LOSSES.get(config.loss).gradient_penalty else "batch"
  if m.d_norm not in D_NORMS:
    raise ConfigError(f"model.d_norm {m.d_norm!r}; expected auto or one of "
                      f"{D_NORMS}")
  if GAN_LOSSES.get(config.loss).gradient_penalty and m.d_norm == "batch":
    raise ConfigError(
        "--loss wgan-gp penalises each example's critic gradient, which "
        "batch norm in the discriminator makes depend on the whole batch; "
        "use --set model.d_norm=layer (or none)")
  for key in ("latent_dim", "width"):
    if m[key] < 1:
      raise ConfigError(f"model.{key} must be >= 1, got {m[key]}")
  if config.d_steps < 1:
    raise ConfigError(f"--d-steps must be >= 1, got {config.d_steps}")
  if not 0.0 <= config.ema_decay < 1.0:
    raise ConfigError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
  if config.gp_weight < 0:
    raise ConfigError(f"gp_weight must be >= 0, got {config.gp_weight}")
  if m.conditional and num_classes < 2:
    raise ConfigError(
        f"--conditional needs labels with at least 2 classes; dataset "
        f"{config.data.name!r} has {num_classes}")
  m.channels = int(channels)
  m.num_classes = int(num_classes) if m.conditional else 0


@TASKS.register("gan")
class GanTask:
  """DCGAN training on an image dataset (see configs/gan.py)."""

  batch_axis = 1  # batches are [d_steps, batch, ...]
  get_config = staticmethod(gan_config.get_config)
  # Config fields a resumed run may change: they do not affect the math.
  resumable_overrides = ("train.steps", "train.progress", "train.log_every",
                         "train.sample_every", "train.checkpoint_every",
                         "train.keep_checkpoints", "train.num_samples",
                         "train.num_devices")

  def __init__(self, config, dataset: ImageDataset | None = None):
    """Builds the task; with a dataset, validates and resolves `config`."""
    if dataset is not None:
      resolve_gan_config(config, dataset.num_classes, dataset.image_shape[-1])
    self.config = config
    self.dataset = dataset
    m = config.model
    self.generator = Generator(
        image_size=config.data.image_size, channels=m.channels, width=m.width,
        num_classes=m.num_classes, upsample=m.upsample)
    self.discriminator = Discriminator(
        image_size=config.data.image_size, width=m.width,
        num_classes=m.num_classes, norm=m.d_norm)
    self.conditional = bool(m.num_classes)
    self.train_step = steps.make_gan_train_step(steps.GanStepConfig(
        loss=GAN_LOSSES.get(config.loss), latent_dim=m.latent_dim,
        conditional=self.conditional, gp_weight=config.gp_weight,
        ema_decay=config.ema_decay))
    self._sample = jax.jit(steps.make_sample_fn(self.generator,
                                                self.conditional))
    self._d_mean = jax.jit(steps.make_gan_eval_step(self.conditional))

  # -- state -----------------------------------------------------------------
  def init_state(self, key: jax.Array) -> GANState:
    c, m = self.config, self.config.model
    k_g, k_d = jax.random.split(key)
    s = c.data.image_size
    z = jnp.zeros((2, m.latent_dim))
    y = jnp.zeros((2,), jnp.int32) if self.conditional else None
    x = jnp.zeros((2, s, s, m.channels))
    g_vars = self.generator.init(k_g, z, y, train=False)
    d_vars = self.discriminator.init(k_d, x, y, train=False)
    gen = TrainState.create(
        apply_fn=self.generator.apply, params=g_vars["params"],
        tx=make_optimizer(c.optimizer, c.optimizer.g_learning_rate),
        batch_stats=g_vars.get("batch_stats", {}))
    disc = TrainState.create(
        apply_fn=self.discriminator.apply, params=d_vars["params"],
        tx=make_optimizer(c.optimizer, c.optimizer.d_learning_rate),
        batch_stats=d_vars.get("batch_stats", {}))
    return GANState(gen=gen, disc=disc, ema_params=gen.params,
                    ema_batch_stats=gen.batch_stats)

  # -- data ------------------------------------------------------------------
  def batch(self, sampler: BatchSampler, index: int) -> dict[str, np.ndarray]:
    """Real batches for step `index`: [d_steps, batch, ...]."""
    return sampler.stacked(index, self.config.d_steps)

  # -- sampling and evaluation -------------------------------------------------
  def grid_inputs(self, n: int, seed: int, label: int | None = None):
    """Fixed latents (and labels: one class per grid row) for sample grids."""
    z = jax.random.normal(jax.random.key(seed), (n, self.config.model.latent_dim))
    ncols = int(np.ceil(np.sqrt(n)))
    if label is not None:
      labels = np.full((n,), label, np.int32)
    elif self.conditional:
      labels = (np.arange(n) // ncols) % self.config.model.num_classes
    else:
      labels = np.zeros((n,), np.int32)
    return z, jnp.asarray(labels, jnp.int32)

  def sample(self, state: GANState, z, labels) -> np.ndarray:
    """EMA-generator images [n, h, w, c] in [-1, 1]."""
    return np.asarray(self._sample(state, z, labels))

  def evaluate(self, state: GANState, step: int,
               workdir: pathlib.Path) -> dict[str, float]:
    """Writes a sample grid; returns held-out discriminator statistics."""
    z, labels = self.grid_inputs(self.config.train.num_samples,
                                 seed=self.config.seed + 1)
    save_image_grid(workdir / "samples" / f"step_{step:07d}.png",
                    self.sample(state, z, labels))
    out = {}
    if self.dataset is not None and "val" in self.dataset.splits:
      n = 256
      for name in ("train", "val"):
        split = self.dataset.splits[name]
        idx = np.random.default_rng(0).permutation(len(split))[:n]
        out[f"eval/d_logit_{name}"] = float(self._d_mean(
            state, uint8_to_unit_range(split.images[idx]),
            split.labels[idx]))
    return out
