"""TimeGanTask: TimeGAN (`medgen train timegan`), a GAN in the latent space
of a recurrent autoencoder (Yoon et al. 2019)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import timegan as timegan_config
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError
from medgen_jax.families._sequence import SeriesTask, series_flags
from medgen_jax.families.timegan import step as tg_step
from medgen_jax.models.timegan import networks
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.objectives.sequence import masked_mean_over_time
from medgen_jax.train.task import (TASKS, Flag, Option, Report,
                                   ReportContext)
from medgen_jax.train.update import make_gradient_fn

OUTPUTS = ("auto", "linear", "sigmoid")
WEIGHTS = ("average", "last")


@TASKS.register("timegan")
class TimeGanTask(SeriesTask):
  """TimeGAN over windows of a record (see configs/timegan.py)."""

  section = "timegan"
  get_config = staticmethod(timegan_config.get_config)
  flags = series_flags("timegan") + (
      Flag("--embed-steps", "timegan.embed_steps",
           "phase 1: steps of the autoencoder alone"),
      Flag("--supervise-steps", "timegan.supervise_steps",
           "phase 2: steps of the latent supervisor alone"),
      Flag("--noise-dim", "timegan.noise_dim",
           "noise values per step (0 = one per channel, or none with "
           "--static-noise-dim)"),
      Flag("--static-noise-dim", "timegan.static_noise_dim",
           "noise values per series, repeated at every step (0 = none)"),
      Flag("--gamma", "timegan.gamma",
           "weight of the adversarial terms on the generator's own latents"),
      Flag("--supervised", "timegan.supervised",
           "weight of sqrt(latent next-step error) in the generator's loss"),
      Flag("--moments", "timegan.moments",
           "weight of the moment loss (batch mean and std; 0 = off)"),
      Flag("--d-threshold", "timegan.d_threshold",
           "update D only while its loss exceeds this"),
      Flag("--output", "timegan.output", "auto | linear | sigmoid"),
      Flag("--fresh-joint-optimizers", "timegan.fresh_joint_optimizers",
           "joint training starts the autoencoder's and generator's Adam "
           "states afresh, as the paper's code does", const=True),
  )
  sample_options = SeriesTask.sample_options + (
      Option("--weights", str, "average: the EMA of the weights (default); "
             "last: the last weights, as the paper samples"),
  )

  @classmethod
  def validate_config(cls, config) -> None:
    super().validate_config(config)
    g = config.timegan
    if g.condition:
      raise ConfigError(
          f"timegan.condition (--condition) {g.condition!r}: TimeGAN here is "
          "unconditional; drop --condition, or use `medgen train rgan` or "
          "`medgen train rnn` for label-conditioned series")
    check_int(g.embed_steps, "timegan.embed_steps (--embed-steps)", 0)
    check_int(g.supervise_steps, "timegan.supervise_steps (--supervise-steps)",
              0)
    if g.embed_steps + g.supervise_steps >= config.train.steps:
      raise ConfigError(
          f"timegan.embed_steps + timegan.supervise_steps = "
          f"{g.embed_steps + g.supervise_steps} leaves no joint training in "
          f"--steps {config.train.steps}; raise --steps or lower "
          "--embed-steps / --supervise-steps")
    check_int(g.noise_dim, "timegan.noise_dim (--noise-dim)", 0, 4097)
    check_int(g.static_noise_dim,
              "timegan.static_noise_dim (--static-noise-dim)", 0, 4097)
    check_real(g.ema_decay, "timegan.ema_decay", 0.0, 1.0, hi_open=True)
    check_real(g.gamma, "timegan.gamma (--gamma)", 0.0)
    check_real(g.supervised, "timegan.supervised (--supervised)", 0.0)
    check_real(g.moments, "timegan.moments (--moments)", 0.0)
    check_real(g.d_threshold, "timegan.d_threshold (--d-threshold)", 0.0)
    if g.output not in OUTPUTS:
      raise ConfigError(f"timegan.output (--output) {g.output!r}; expected "
                        f"one of {', '.join(OUTPUTS)}")
    if config.optimizer.schedule != "constant":
      raise ConfigError(
          f"optimizer.schedule (--lr-schedule) {config.optimizer.schedule!r}:"
          " timegan updates each network a different number of times in "
          "each phase, so only --lr-schedule constant is offered")

  def resolve(self, config, dataset: Dataset) -> None:
    super().resolve(config, dataset)
    s = config.timegan
    extra = [name for name, on in (("static covariates", s.num_covariates),
                                   ("a time input", s.time_kind)) if on]
    if extra:
      raise ConfigError(
          f"dataset {dataset.name!r} gives {' and '.join(extra)}, which "
          "timegan does not take; use `medgen train rgan` or `medgen train "
          "rnn` for such series")

  def __init__(self, config, dataset: Dataset | None = None):
    if dataset is not None:
      self.resolve(config, dataset)
    self.check_resolved(config)
    self.config = config
    g = config.timegan
    output = g.output
    if output == "auto":  # train data in [0, 1]: squash the recovery's output
      output = "sigmoid" if g.unit_interval else "linear"
    nets = networks(g.channels, output, g.cell, g.hidden, g.layers)
    # --noise-dim 0: one value per channel (the paper), or none beside
    # static noise
    noise_dim = g.noise_dim or (0 if g.static_noise_dim else g.channels)
    self.cfg = tg_step.TimeGanStepConfig(
        nets=tuple(nets.items()), noise_dim=noise_dim,
        embed_steps=g.embed_steps, supervise_steps=g.supervise_steps,
        gamma=float(g.gamma), supervised=float(g.supervised),
        moments=float(g.moments), d_threshold=float(g.d_threshold),
        static_noise_dim=g.static_noise_dim, ema_decay=float(g.ema_decay),
        fresh_joint_optimizers=bool(g.fresh_joint_optimizers))
    self.train_step = tg_step.make_train_step(self.cfg,
                                              make_gradient_fn(config))
    self._synthesize = jax.jit(
        lambda params, z: tg_step.synthesize(self.cfg, params, z))

  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    super().check_sample_options(options)
    weights = options.get("weights")
    if weights is not None and weights not in WEIGHTS:
      raise ConfigError(f"--weights {weights!r}: expected one of "
                        f"{', '.join(WEIGHTS)}")

  def init_state(self, key: jax.Array) -> tg_step.TimeGanState:
    g, cfg = self.config.timegan, self.cfg
    inputs = {"embedder": g.channels, "recovery": g.hidden,
              "generator": cfg.noise_dim + cfg.static_noise_dim,
              "supervisor": g.hidden,
              "discriminator": g.hidden}
    keys = dict(zip(inputs, jax.random.split(key, len(inputs))))
    params = {name: cfg.net(name).init(keys[name],
                                       jnp.zeros((2, 4, n)))["params"]
              for name, n in inputs.items()}
    opt = self.config.optimizer

    def state(names):
      group = {n: params[n] for n in names}
      return TrainState.create(
          apply_fn=None, params=group,
          tx=make_optimizer(opt, opt.learning_rate, self.config.train.steps))

    auto = state(("embedder", "recovery"))
    gen = state(("generator", "supervisor"))
    return tg_step.TimeGanState(
        step=jnp.zeros((), jnp.int32), auto=auto, gen=gen,
        ema=tg_step.sampling_params(auto.params, gen.params),
        disc=TrainState.create(
            apply_fn=None, params=params["discriminator"],
            tx=make_optimizer(opt, opt.learning_rate, self.config.train.steps)))

  # -- batches: three real batches stacked on a leading axis -----------------------
  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    batch = self.stacked_batch(split, sampler, step, tg_step.BATCHES)
    return {k: batch[k] for k in ("x", "mask")}

  def batch_axes(self, batch) -> Mapping[str, int | None]:
    return {k: 1 for k in batch}

  # -- generation ----------------------------------------------------------------------
  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n windows recovery(supervisor(generator(z))) from the EMA weights
    (options["weights"] "last": the last weights): "x" in the record's
    units, "x_norm" normalised, "mask"."""
    length = int(options.get("length") or self.config.timegan.window)
    labels = self.sample_labels(n, options)
    z = tg_step.noise(self.cfg, key, n, length)
    params = state.ema
    if options.get("weights") == "last":
      params = tg_step.sampling_params(state.auto.params, state.gen.params)
    x = self._synthesize(params, z)
    return self.package(np.asarray(x), labels)

  # -- the report ----------------------------------------------------------------------
  def critic_score(self, auto_params, d_params):
    """(x [b, T, C], extras) -> the latent discriminator's mean logit over
    each window's unmasked steps, D(embedder(x)) [b] (higher: more real)."""
    cfg = self.cfg

    def score(x, extras):
      mask = extras["mask"]
      h = cfg.apply("embedder", auto_params["embedder"],
                    jnp.where(mask[..., None], x, 0.0))
      logits = cfg.apply("discriminator", d_params, h)[..., 0]   # [b, T]
      return masked_mean_over_time(logits, mask)

    return score

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """TimeGAN's scores (`SeriesTask.report`) plus what the latent
    discriminator looks at through the embedder: integrated gradients of
    D(embedder(x)) on generated and real held-out windows
    (`SeriesTask.discriminator_report`)."""
    report = super().report(state, dataset, context)
    return self.discriminator_report(
        report, state, dataset, context,
        self.critic_score(state.auto.params, state.disc.params),
        "the latent discriminator's mean per-step logit on the embedded "
        "window, D(embedder(x)) (higher: more real)")
