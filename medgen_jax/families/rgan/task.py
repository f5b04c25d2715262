"""RganTask: the recurrent GAN family (`medgen train rgan`)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import rgan as rgan_config
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError
from medgen_jax.families._sequence import SeriesTask, series_flags
from medgen_jax.families.rgan import step as rgan_step
from medgen_jax.models.recurrent import (NextStep, SeriesDiscriminator,
                                         SeriesGenerator)
from medgen_jax.objectives.minimax import GAN_LOSSES
from medgen_jax.objectives.sequence import masked_mean_over_time
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import TASKS, Flag, Report, ReportContext
from medgen_jax.train.update import make_gradient_fn

# Per-step losses that need no gradient penalty (a per-step WGAN-GP would
# need the penalty per step; not offered).
PER_STEP_LOSSES = ("minimax", "nonsaturating", "hinge")
OUTPUTS = ("auto", "linear", "sigmoid")


@TASKS.register("rgan")
class RganTask(SeriesTask):
  """RCGAN over windows of a record (see configs/rgan.py)."""

  section = "rgan"
  get_config = staticmethod(rgan_config.get_config)
  flags = series_flags("rgan") + (
      Flag("--loss", "rgan.loss", "minimax | nonsaturating | hinge (per step)"),
      Flag("--noise-dim", "rgan.noise_dim", "noise values per step"),
      Flag("--static-noise-dim", "rgan.static_noise_dim",
           "noise values per series, repeated at every step"),
      Flag("--d-steps", "rgan.d_steps", "discriminator updates per step"),
      Flag("--supervised", "rgan.supervised",
           "weight of TimeGAN's next-step supervised loss (0 = off)"),
      Flag("--output", "rgan.output", "auto | linear | sigmoid"),
  )

  @classmethod
  def validate_config(cls, config) -> None:
    super().validate_config(config)
    g = config.rgan
    if g.loss not in PER_STEP_LOSSES:
      raise ConfigError(f"rgan.loss (--loss) {g.loss!r}; expected one of "
                        f"{', '.join(PER_STEP_LOSSES)}")
    check_int(g.noise_dim, "rgan.noise_dim (--noise-dim)", 0, 4097)
    check_int(g.static_noise_dim,
              "rgan.static_noise_dim (--static-noise-dim)", 0, 4097)
    if g.noise_dim + g.static_noise_dim == 0:
      raise ConfigError("rgan.noise_dim (--noise-dim) and "
                        "rgan.static_noise_dim (--static-noise-dim) are both "
                        "0; the generator needs noise: set either to >= 1")
    check_int(g.d_steps, "rgan.d_steps (--d-steps)", 1, 101)
    check_real(g.supervised, "rgan.supervised (--supervised)", 0.0)
    check_real(g.ema_decay, "rgan.ema_decay", 0.0, 1.0, hi_open=True)
    if g.output not in OUTPUTS:
      raise ConfigError(f"rgan.output (--output) {g.output!r}; expected one "
                        f"of {', '.join(OUTPUTS)}")

  def __init__(self, config, dataset: Dataset | None = None):
    if dataset is not None:
      self.resolve(config, dataset)
    self.check_resolved(config)
    self.config = config
    g = config.rgan
    output = g.output
    if output == "auto":  # train data in [0, 1]: squash the generator's output
      output = "sigmoid" if g.unit_interval else "linear"
    stack = dict(cell=g.cell, hidden=g.hidden, layers=g.layers)
    cond = dict(num_classes=g.num_classes, num_covariates=g.num_covariates)
    self.cfg = rgan_step.RganStepConfig(
        generator=SeriesGenerator(channels=g.channels, output=output,
                                  **stack, **cond),
        discriminator=SeriesDiscriminator(**stack, **cond),
        supervisor=NextStep(channels=g.channels, cell=g.cell,
                            hidden=g.hidden, layers=1),
        loss=GAN_LOSSES.get(g.loss), noise_dim=g.noise_dim,
        d_steps=g.d_steps, conditional=bool(g.num_classes),
        supervised=float(g.supervised), ema_decay=g.ema_decay,
        static_noise_dim=g.static_noise_dim)
    self.train_step = rgan_step.make_train_step(self.cfg,
                                                make_gradient_fn(config))
    self._generate = jax.jit(
        lambda params, z, label, cov: rgan_step.generate(self.cfg, params, z,
                                                         label, cov))

  def init_state(self, key: jax.Array) -> rgan_step.RganState:
    g, cfg = self.config.rgan, self.cfg
    k_g, k_d, k_s = jax.random.split(key, 3)
    x = jnp.zeros((2, 4, g.channels))
    label = jnp.zeros((2,), jnp.int32)
    cov = jnp.zeros((2, g.num_covariates)) if g.num_covariates else None
    z = jnp.zeros((2, 4, g.noise_dim + g.static_noise_dim))
    g_params = cfg.generator.init(k_g, z,
                                  label, cov)["params"]
    d_params = cfg.discriminator.init(k_d, x, label, cov)["params"]
    s_params = cfg.supervisor.init(k_s, x)["params"]
    opt = self.config.optimizer

    def state(model, params, updates_per_step=1):
      return TrainState.create(
          apply_fn=model.apply, params=params,
          tx=make_optimizer(opt, opt.learning_rate, self.config.train.steps,
                            updates_per_step))

    return rgan_step.RganState(
        gen=state(cfg.generator, g_params),
        disc=state(cfg.discriminator, d_params, g.d_steps),
        sup=state(cfg.supervisor, s_params), ema_params=g_params)

  # -- batches: d_steps real batches stacked on a leading axis ---------------------
  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return self.stacked_batch(split, sampler, step, self.config.rgan.d_steps)

  def batch_axes(self, batch) -> Mapping[str, int | None]:
    return {k: 1 for k in batch}

  # -- generation ----------------------------------------------------------------------
  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n windows from the EMA generator: "x" in the record's units,
    "x_norm" normalised, "mask"."""
    length = int(options.get("length") or self.config.rgan.window)
    labels = self.sample_labels(n, options)
    z = rgan_step.noise(self.cfg, key, n, length)
    x = self._generate(state.ema_params, z, jnp.asarray(labels),
                       self.sample_covariates(n, options))
    return self.package(np.asarray(x), labels)

  # -- the report ----------------------------------------------------------------------
  def critic_score(self, d_params):
    """(x [b, T, C], extras) -> the discriminator's mean logit over each
    window's unmasked steps [b] (higher: more real)."""
    d, conditional = self.cfg.discriminator, self.cfg.conditional

    def score(x, extras):
      logits = d.apply({"params": d_params}, x,                    # [b, T]
                       extras["label"] if conditional else None,
                       extras.get("covariates"))
      return masked_mean_over_time(logits, extras["mask"])

    return score

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """TimeGAN's scores (`SeriesTask.report`) plus what the discriminator
    looks at: integrated gradients of its mean per-step logit on a few
    generated and real held-out windows and the mean |attribution| per
    channel of each (`SeriesTask.discriminator_report`)."""
    report = super().report(state, dataset, context)
    return self.discriminator_report(
        report, state, dataset, context, self.critic_score(state.disc.params),
        "the discriminator's mean per-step logit (higher: more real)")
