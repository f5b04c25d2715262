"""TimeGAN's train step on the generic update (Yoon et al. 2019).

A run has three phases, set by the run's step (TimeGAN's training order):

  1. steps [0, embed_steps): the autoencoder alone, 10 sqrt(R);
  2. [embed_steps, embed_steps + supervise_steps): the supervisor alone on
     the latent next-step loss S of real windows;
  3. the rest, joint training. One step = twice (a generator update, then an
     autoencoder update, on the same real batch), then one discriminator
     update on a third batch, kept only when D's loss on that batch before
     the update exceeds `d_threshold` (0.15 in the paper: D is not allowed
     to run away from the generator).

The phase is picked inside the compiled step (`jax.lax.switch` on the
step), so the one loop, `--resume` and checkpoints work as for every family,
and a resumed run continues exactly. Every update is `train.update.update`
on a per-example loss of objectives/timegan.py. Metrics a phase does not
compute are logged as 0; `phase` says which ran.

Samples come from an exponential moving average (EMA) of the sampling
path's weights (generator, supervisor, recovery; `ema_decay`, 0.999): a
GAN's weights orbit an equilibrium, and their average is a steadier
generator than the last iterate (Yazici et al. 2019). In phases 1 and 2
the average is the weights themselves; in the joint phase it warms up from
the phase's first step (`train.state.ema_decay_at`). It is not in the
paper's code; `ema_decay` 0 samples the last weights.

Optimizers: one Adam per group, (embedder, recovery), (generator,
supervisor) and the discriminator. By default the first two carry their
moments from phases 1-2 into joint training; the paper's code gives the
joint phase's autoencoder and generator losses Adams of their own, which
`fresh_joint_optimizers` reproduces: at the joint phase's first step their
optimizer states restart from `tx.init` (zero moments, count 0).

Batch (numpy, from TimeGanTask.make_batch), three real batches stacked:
  x: float32 [3, batch, time, channels]
  mask: bool [3, batch, time]
"""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import optax

from medgen_jax.models.timegan import StepMap
from medgen_jax.objectives import timegan as tg
from medgen_jax.train.state import TrainState, ema_decay_at
from medgen_jax.train.update import GradientFn, LossOutput, update

BATCHES = 3   # real batches per step (two generator/autoencoder rounds, D)
METRICS = ("phase", "loss", "e_recon", "s_loss", "g_adv", "g_supervised",
           "g_moments", "d_loss", "d_updated")


class TimeGanState(flax.struct.PyTreeNode):
  """The run's step and TimeGAN's three trained groups.

  Attributes:
    step: completed steps of the run (over all phases).
    auto: embedder + recovery, params {"embedder", "recovery"}.
    gen: generator + supervisor, params {"generator", "supervisor"}.
    disc: the latent discriminator.
    ema: EMA of the sampling path's params {"generator", "supervisor",
      "recovery"}, used for sampling.
  """

  step: jax.Array
  auto: TrainState
  gen: TrainState
  disc: TrainState
  ema: dict


@dataclasses.dataclass(frozen=True)
class TimeGanStepConfig:
  """Static settings (hashable; part of the compiled program)."""

  nets: tuple[tuple[str, StepMap], ...]
  noise_dim: int
  embed_steps: int
  supervise_steps: int
  gamma: float = 1.0
  supervised: float = 100.0
  moments: float = 100.0
  d_threshold: float = 0.15
  static_noise_dim: int = 0
  ema_decay: float = 0.999
  fresh_joint_optimizers: bool = False

  def net(self, name: str) -> StepMap:
    return dict(self.nets)[name]

  def apply(self, name: str, params, x: jax.Array) -> jax.Array:
    return self.net(name).apply({"params": params}, x)


def noise(cfg: TimeGanStepConfig, key, batch: int,
          time: int) -> jax.Array:
  """The generator's input, U[0, 1) [batch, time, noise_dim + static_noise_dim].

  The first `noise_dim` values are drawn afresh at every step (TimeGAN's
  input); the last `static_noise_dim` are drawn once per series and
  repeated at every step, so what is fixed for a whole window (a
  frequency, a phase, a patient's baseline) can be a smooth function of
  them rather than something the generator must settle on from its first
  few steps of noise.
  """
  z = jax.random.uniform(key, (batch, time, cfg.noise_dim))
  if not cfg.static_noise_dim:
    return z
  static = jax.random.uniform(jax.random.fold_in(key, 1),
                              (batch, 1, cfg.static_noise_dim))
  return jnp.concatenate(
      [z, jnp.broadcast_to(static, (batch, time, cfg.static_noise_dim))], -1)


def sampling_params(auto_params, gen_params) -> dict:
  """The weights samples are made with: generator, supervisor, recovery."""
  return {"generator": gen_params["generator"],
          "supervisor": gen_params["supervisor"],
          "recovery": auto_params["recovery"]}


def synthesize(cfg: TimeGanStepConfig, params, z: jax.Array) -> jax.Array:
  """recovery(supervisor(generator(z))): [b, t, C] normalised values.
  `params`: `sampling_params` (or their EMA)."""
  e = cfg.apply("generator", params["generator"], z)
  h = cfg.apply("supervisor", params["supervisor"], e)
  return cfg.apply("recovery", params["recovery"], h)


def _embed(cfg, auto_params, x, mask):
  return cfg.apply("embedder", auto_params["embedder"],
                   jnp.where(mask[..., None], x, 0.0))


def _fakes(cfg, gen_params, z):
  e = cfg.apply("generator", gen_params["generator"], z)
  return e, cfg.apply("supervisor", gen_params["supervisor"], e)


def _metrics(**values) -> dict[str, jax.Array]:
  return {k: jnp.asarray(values.get(k, 0.0), jnp.float32) for k in METRICS}


def make_train_step(cfg: TimeGanStepConfig, gradient_fn: GradientFn):

  def recon_loss_fn(supervisor_weight, gen_params):
    """The autoencoder's loss: 10 sqrt(R) (+ 0.1 S in joint training)."""

    def loss_fn(params, batch, key) -> LossOutput:
      del key
      x, mask = batch["x"], batch["mask"]
      h = _embed(cfg, params, x, mask)
      r = tg.reconstruction_error(cfg.apply("recovery", params["recovery"], h),
                                  x, mask)
      losses = 10.0 * tg.root(r)
      if supervisor_weight:
        pred = cfg.apply("supervisor", gen_params["supervisor"], h)
        losses = losses + supervisor_weight * tg.latent_next_step_error(
            pred, h, mask)
      return LossOutput(losses, {"e_recon": r.mean()})

    return loss_fn

  def supervisor_loss_fn(auto_params):
    """Phase 2: S on real windows (only the supervisor's weights move)."""

    def loss_fn(params, batch, key) -> LossOutput:
      del key
      h = jax.lax.stop_gradient(_embed(cfg, auto_params, batch["x"],
                                       batch["mask"]))
      pred = cfg.apply("supervisor", params["supervisor"], h)
      return LossOutput(tg.latent_next_step_error(pred, h, batch["mask"]))

    return loss_fn

  def generator_loss_fn(auto_params, d_params):

    def loss_fn(params, batch, key) -> LossOutput:
      x, mask = batch["x"], batch["mask"]
      b, t = mask.shape
      e, h_hat = _fakes(cfg, params, noise(cfg, key, b, t))
      d = lambda h: cfg.apply("discriminator", d_params, h)[..., 0]  # noqa: E731
      adv = tg.generator_adversarial(d(h_hat), d(e), mask, cfg.gamma)
      h = jax.lax.stop_gradient(_embed(cfg, auto_params, x, mask))
      s = tg.latent_next_step_error(
          cfg.apply("supervisor", params["supervisor"], h), h, mask)
      x_hat = cfg.apply("recovery", auto_params["recovery"], h_hat)
      v = tg.moment_gap(x_hat, x, mask)
      losses = adv + cfg.supervised * tg.root(s) + cfg.moments * v
      return LossOutput(losses, {"g_adv": adv.mean(), "g_supervised": s.mean(),
                                 "g_moments": v})

    return loss_fn

  def disc_loss_fn(auto_params, gen_params):

    def loss_fn(params, batch, key) -> LossOutput:
      x, mask = batch["x"], batch["mask"]
      b, t = mask.shape
      h = _embed(cfg, auto_params, x, mask)
      e, h_hat = _fakes(cfg, gen_params, noise(cfg, key, b, t))
      h, e, h_hat = jax.lax.stop_gradient((h, e, h_hat))
      d = lambda v: cfg.apply("discriminator", params, v)[..., 0]  # noqa: E731
      losses = (tg.real_loss(d(h), mask) + tg.fake_loss(d(h_hat), mask)
                + cfg.gamma * tg.fake_loss(d(e), mask))
      return LossOutput(losses)

    return loss_fn

  def embed_phase(state, batch, key):
    auto, info = update(state.auto, recon_loss_fn(0.0, None), batch[0], key,
                        gradient_fn=gradient_fn)
    return state.replace(auto=auto), _metrics(
        phase=1, loss=info.loss, e_recon=info.metrics["e_recon"])

  def supervise_phase(state, batch, key):
    gen, info = update(state.gen, supervisor_loss_fn(state.auto.params),
                       batch[0], key, gradient_fn=gradient_fn)
    return state.replace(gen=gen), _metrics(phase=2, loss=info.loss,
                                            s_loss=info.loss)

  def restart_optimizers(state):
    """At the joint phase's first step: the autoencoder's and generator's
    optimizer states as `tx.init` makes them (the paper's separate Adams)."""
    first = state.step == cfg.embed_steps + cfg.supervise_steps

    def restart(ts: TrainState) -> TrainState:
      fresh = ts.tx.init(ts.params)
      return ts.replace(opt_state=jax.tree.map(
          lambda f, o: jnp.where(first, f, o), fresh, ts.opt_state))

    return state.replace(auto=restart(state.auto), gen=restart(state.gen))

  def joint_phase(state, batch, key):
    if cfg.fresh_joint_optimizers:
      state = restart_optimizers(state)
    auto, gen = state.auto, state.gen
    for k in range(BATCHES - 1):
      k_g, k_e = jax.random.split(jax.random.fold_in(key, k))
      gen, g_info = update(gen, generator_loss_fn(auto.params,
                                                  state.disc.params),
                           batch[k], k_g, gradient_fn=gradient_fn)
      auto, e_info = update(auto, recon_loss_fn(0.1, gen.params), batch[k],
                            k_e, gradient_fn=gradient_fn)
    disc, d_info = update(state.disc, disc_loss_fn(auto.params, gen.params),
                          batch[BATCHES - 1], jax.random.fold_in(key, 99),
                          gradient_fn=gradient_fn)
    keep = d_info.loss > cfg.d_threshold
    disc = jax.tree.map(lambda new, old: jnp.where(keep, new, old), disc,
                        state.disc)
    return state.replace(auto=auto, gen=gen, disc=disc), _metrics(
        phase=3, loss=g_info.loss, e_recon=e_info.metrics["e_recon"],
        g_adv=g_info.metrics["g_adv"],
        g_supervised=g_info.metrics["g_supervised"],
        g_moments=g_info.metrics["g_moments"], d_loss=d_info.loss,
        d_updated=keep.astype(jnp.float32))

  def train_step(state: TimeGanState, batch, key):
    key = jax.random.fold_in(key, state.step)
    parts = [{k: v[i] for k, v in batch.items()} for i in range(BATCHES)]
    phase = ((state.step >= cfg.embed_steps).astype(jnp.int32)
             + (state.step >= cfg.embed_steps + cfg.supervise_steps
                ).astype(jnp.int32))
    new, metrics = jax.lax.switch(
        phase, (embed_phase, supervise_phase, joint_phase), state, parts, key)
    joint_start = cfg.embed_steps + cfg.supervise_steps
    decay = jnp.where(phase < 2, 0.0,
                      ema_decay_at(state.step - joint_start, cfg.ema_decay))
    ema = optax.incremental_update(
        sampling_params(new.auto.params, new.gen.params), state.ema,
        1.0 - decay)
    return new.replace(step=state.step + 1, ema=ema), metrics

  return train_step
