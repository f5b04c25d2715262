"""RnnTask: the autoregressive recurrent family (`medgen train rnn`)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import rnn as rnn_config
from medgen_jax.configs.base import check_real
from medgen_jax.data.base import Dataset
from medgen_jax.families._sequence import (ATTRIBUTED, SeriesTask,
                                           series_flags)
from medgen_jax.families.rnn import step as rnn_step
from medgen_jax.models.recurrent import Autoregressive
from medgen_jax.errors import ConfigError
from medgen_jax.models.recurrent import TIME_KINDS
from medgen_jax.objectives.sequence import HEADS, get_head
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import (TASKS, Flag, Option, Outputs, Report,
                                   ReportContext)
from medgen_jax.train.update import make_gradient_fn

EVAL_CHUNK = 64   # held-out windows scored per compiled call
AUTO_HEAD = "auto"
DEFAULT_HEADS = {"real": "mdn", "categorical": "categorical", "counts": "zinb"}


@TASKS.register("rnn")
class RnnTask(SeriesTask):
  """p(y_t | y_<t) over windows of a record (see configs/rnn.py)."""

  section = "rnn"
  get_config = staticmethod(rnn_config.get_config)
  flags = series_flags("rnn") + (
      Flag("--head", "rnn.head", "auto | gaussian | mdn | categorical | nb | "
           "zinb: the distribution per step (auto: mdn for real values, "
           "categorical for stages, zinb for counts)"),
      Flag("--temperature", "rnn.temperature",
           "sampling temperature (scales the predicted spread)"),
      Flag("--input-noise", "rnn.input_noise",
           "std of noise added to teacher-forced inputs (normalised units)"),
  )
  value_kinds = ("real", "categorical", "counts")
  sample_options = SeriesTask.sample_options + (
      Option("--temperature", float, "scales the predicted spread (0: the "
             "most likely value at each step); default: the run's"),
  )

  @classmethod
  def validate_config(cls, config) -> None:
    super().validate_config(config)
    if config.rnn.head != AUTO_HEAD:
      HEADS.get(config.rnn.head)
    check_real(config.rnn.temperature, "rnn.temperature (--temperature)", 0.0)
    check_real(config.rnn.input_noise, "rnn.input_noise (--input-noise)", 0.0)

  def __init__(self, config, dataset: Dataset | None = None):
    if dataset is not None:
      self.resolve(config, dataset)
      self._choose_head(config.rnn)
    self.check_resolved(config)
    self.config = config
    r = config.rnn
    self.head = get_head(r.head, r.categories, r.count_log_mean)
    self.model = Autoregressive(
        num_params=self.head.num_params(r.channels), cell=r.cell,
        hidden=r.hidden, layers=r.layers, num_classes=r.num_classes,
        num_covariates=r.num_covariates)
    self.cfg = rnn_step.RnnStepConfig(self.model, self.head,
                                      conditional=bool(r.num_classes),
                                      input_noise=float(r.input_noise),
                                      time_kind=r.time_kind,
                                      epoch_seconds=1.0 / float(r.rate))
    self.train_step = rnn_step.make_train_step(self.cfg,
                                               make_gradient_fn(config))
    self._scores = jax.jit(rnn_step.make_scores(self.cfg))
    self._sample = jax.jit(rnn_step.make_sample(self.cfg, r.channels),
                           static_argnums=(6, 7))
    self._forecast = jax.jit(rnn_step.make_forecast(self.cfg),
                             static_argnums=(8,))

  @staticmethod
  def _choose_head(r) -> None:
    """rnn.head "auto" -> the head of the data's values; an explicit head
    must suit them."""
    if r.head == AUTO_HEAD:
      r.head = DEFAULT_HEADS[r.value_kind]
    data = HEADS.get(r.head).data
    if data != r.value_kind:
      fits = [n for n in HEADS.names() if HEADS.get(n).data == r.value_kind]
      raise ConfigError(
          f"--head {r.head} models {data} values but the data hold "
          f"{r.value_kind} values; use --head {' or '.join(fits)} (or auto)")

  def init_state(self, key: jax.Array) -> TrainState:
    r = self.config.rnn
    y = self.head.inputs(jnp.zeros((2, 4, r.channels)))
    cov = jnp.zeros((2, r.num_covariates)) if r.num_covariates else None
    time = (rnn_step.step_times(self.cfg, jnp.zeros((2,)), 4)
            if r.time_kind else None)
    params = self.model.init(key, y, jnp.ones((2, 4), bool),
                             jnp.zeros((2,), jnp.int32), cov,
                             time)["params"]
    return TrainState.create(
        apply_fn=self.model.apply, params=params,
        tx=make_optimizer(self.config.optimizer,
                          self.config.optimizer.learning_rate,
                          self.config.train.steps))

  # -- evaluation -------------------------------------------------------------------
  def held_out_nll(self, params, batch) -> float:
    """Mean NLL per unmasked step (nats) over `batch`, in fixed-size chunks."""
    total, steps = 0.0, 0.0
    n = batch["x"].shape[0]
    for start in range(0, n, EVAL_CHUNK):
      chunk = {k: v[start:start + EVAL_CHUNK] for k, v in batch.items()}
      m = chunk["x"].shape[0]
      if m < EVAL_CHUNK:  # pad to the compiled size; padding has no steps
        chunk = {k: np.concatenate([v, np.zeros((EVAL_CHUNK - m,) + v.shape[1:],
                                                v.dtype)])
                 for k, v in chunk.items()}
      nll, count = self._scores(params, chunk)
      total += float(np.asarray(nll)[:m].sum())
      steps += float(np.asarray(count)[:m].sum())
    return total / max(steps, 1.0)

  def forecast(self, state, context, mask, label=None, covariates=None,
               t0=None, *, horizon: int, temperature: float = 0.0,
               key=None) -> np.ndarray:
    """Continues each context [b, t, c] (normalised) by `horizon` steps;
    t0 [b]: the contexts' start times (runs with a time input)."""
    b = context.shape[0]
    label = np.zeros((b,), np.int32) if label is None else label
    key = jax.random.key(0) if key is None else key
    if self.config.rnn.time_kind and t0 is None:
      t0 = np.full((b,), self.config.rnn.time_start, np.float32)
    return np.asarray(self._forecast(
        state.params, key, jnp.asarray(context), jnp.asarray(mask),
        jnp.asarray(label), covariates, t0, jnp.float32(temperature),
        horizon))

  def forecast_scores(self, state, batch) -> dict[str, float]:
    """Forecasts the second half of each held-out window from its first half
    (temperature 0) and reports the MAE over observed steps, beside the
    persistence baseline (the last observed context value, held)."""
    x, mask = batch["x"], batch["mask"]
    half = x.shape[1] // 2
    pred = self.forecast(state, x[:, :half], mask[:, :half], batch["label"],
                         batch.get("covariates"), batch.get("t0"),
                         horizon=x.shape[1] - half)
    target, tmask = x[:, half:], mask[:, half:]
    last = np.zeros_like(x[:, 0])
    for t in range(half):  # the last observed context value of each window
      last = np.where(mask[:, t:t + 1], x[:, t], last)
    denom = max(float(tmask.sum()) * x.shape[2], 1.0)
    err = np.abs(pred - target) * tmask[..., None]
    base = np.abs(last[:, None] - target) * tmask[..., None]
    return {"forecast_mae": float(err.sum() / denom),
            "forecast_mae_persistence": float(base.sum() / denom)}

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    name, batch = self.held_out(dataset)
    out = self.evaluate_samples(state, name, batch,
                                jax.random.key(self.config.seed + 17))
    out.scalars[f"eval/{name}_nll_per_step"] = self.held_out_nll(state.params,
                                                                 batch)
    out.scalars.update({f"eval/{name}_{k}": v for k, v in
                        self.forecast_scores(state, batch).items()})
    return out

  # -- generation ---------------------------------------------------------------------
  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n series sampled from the model, each value fed back as the next
    input: "x" in the record's units, "x_norm" normalised, "mask"."""
    r = self.config.rnn
    length = options.get("length") or r.window
    temperature = options.get("temperature")
    temperature = r.temperature if temperature is None else temperature
    labels = self.sample_labels(n, options)
    t0 = self.sample_starts(n, options)
    x = self._sample(state.params, key, jnp.asarray(labels),
                     self.sample_covariates(n, options), t0,
                     jnp.float32(temperature), n, int(length))
    return self.package(np.asarray(x), labels, t0)

  # -- the report ----------------------------------------------------------------------
  def forecast_score(self, params):
    """(x [b, T, C], extras) -> the predicted mean of the last step's value
    from the steps before it, averaged over channels [b] (normalised units;
    for a mixture, the mixture's mean)."""
    cfg = self.cfg

    def score(x, extras):
      times = (rnn_step.step_times(cfg, extras["t0"], x.shape[1])
               if cfg.time_kind else None)
      raw = cfg.model.apply({"params": params}, cfg.head.inputs(x),
                            extras["mask"],
                            extras["label"] if cfg.conditional else None,
                            extras.get("covariates"), times)   # [b, T, P]
      return cfg.head.mean(raw[:, -1]).mean(-1)

    return score

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """TimeGAN's scores (`SeriesTask.report`) plus which earlier steps the
    one-step forecast of a window's last value rests on: integrated
    gradients on a few real held-out windows (`forecast_attributions`)."""
    report = super().report(state, dataset, context)
    if self.head.data != "real":
      report.notes.append(
          f"No forecast attributions: the {self.head.name} head predicts "
          f"{self.head.data} values, which have no predicted mean of a real "
          "value to explain.")
      return report
    split, batch = self.attribution_windows(dataset, ATTRIBUTED,
                                            context.seed)
    self.series_attributions(
        report, "forecast_attributions", self.forecast_score(state.params),
        batch, [f"real {split} {i + 1}" for i in range(len(batch["x"]))],
        f"the {self.head.name} head's predicted mean of each window's last "
        "value (mean over channels) given the steps before it, on real "
        f"{split.upper()} windows (the last step itself is not an input: "
        "its strip is blank)")
    return report
