"""What the recurrent families (rnn, rgan) share: resolving a run's config
from a series dataset, batches, held-out windows, denormalisation, the
sample-quality scores of every evaluation and the pictures of traces.

Not a family itself (the leading underscore keeps it out of `medgen
families`); `families/rnn` and `families/rgan` subclass `SeriesTask`.

Series datasets (data/series.py) hold "x" float32 [n, time, channels]
(normalised; masked steps 0.0), "mask" bool [n, time] and, for beat
segments, "label" int32 [n]; their metadata carries the channel names,
units, sampling rate and normalisation, which a run copies into its config.

Sleep data (data/sleep.py) add three things a run also copies: what the
values are (metadata "values": real | categorical | counts, with the class
names of categorical data), a per-window start time "t0" [n] with the kind
of time input it feeds ("time_kind": clock | elapsed), and a "domain"
(hypnogram | actigraphy) whose registered `SeriesView` adds the domain's
scores and pictures to every evaluation and sample (families/_sleep.py).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, ClassVar, Mapping

import jax
import numpy as np

from medgen_jax import traces
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.configs.sequence import DERIVED, validate_recurrent_fields
from medgen_jax.configs.series import (SERIES_FLAGS,
                                       validate_series_data_options)
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.metrics import sequence as seq_metrics
from medgen_jax.registry import Registry
from medgen_jax.train.task import (BaseTask, Flag, Option, Outputs, Report,
                                   ReportContext, held_out_view)

TRACES_SHOWN = 4      # real and generated windows in each traces picture
SCORE_SEED = 1234     # seed of the post-hoc classifier at each evaluation
ATTRIBUTED = 4        # windows of each kind with attribution maps in a report
IG_STEPS = 64         # integrated-gradients points (smooth GRU/LSTM nets)
IG_BATCH = 1024       # most windows through the network in one call

RECURRENT_FLAGS = (
    ("--cell", "cell", "gru | lstm"),
    ("--hidden", "hidden", "units per recurrent layer"),
    ("--layers", "layers", "stacked recurrent layers"),
    ("--condition", "condition", "label: condition on the beat class "
     "(--segment beat)"),
)


@dataclasses.dataclass(frozen=True)
class SeriesView:
  """What a domain of series adds to evaluations and samples.

  Attributes:
    scores: (task, real batch, generated {"x", "mask", "t0"}, prefix) ->
      {name: value}: the domain's measures of generated against real.
    picture: (task, real batch or None, generated) -> [1, H, W, 3] in
      [-1, 1], drawn instead of the generic traces.
  """

  scores: Callable[..., dict[str, float]]
  picture: Callable[..., np.ndarray]


DOMAINS: Registry[SeriesView] = Registry("series domain")


def domain_view(name: str) -> SeriesView | None:
  if not name:
    return None
  from medgen_jax.families import _sleep  # noqa: F401  registers its views
  return DOMAINS.get(name)


def parse_start(text: str) -> float:
  """--start: "HH:MM" (clock time, seconds since midnight) or seconds."""
  text = str(text).strip()
  try:
    if ":" in text:
      t = datetime.datetime.strptime(text, "%H:%M")
      return float(t.hour * 3600 + t.minute * 60)
    value = float(text)
  except ValueError:
    value = float("nan")
  if not np.isfinite(value) or value < 0:
    raise ConfigError(f"--start {text!r}: expected a clock time HH:MM or "
                      "seconds >= 0")
  return value


def series_flags(section: str) -> tuple[Flag, ...]:
  """The data flags of configs/series.py and the recurrent stack's flags."""
  return (tuple(Flag(f, p, h) for f, p, h in SERIES_FLAGS)
          + tuple(Flag(f, f"{section}.{field}", h)
                  for f, field, h in RECURRENT_FLAGS))


class SeriesTask(BaseTask):
  """Shared behaviour of the recurrent families (see module docstring)."""

  section: ClassVar[str] = ""
  data_keys = ("x", "mask")
  sample_options = (
      Option("--label", int, "beat class to generate (runs trained with "
             "--condition label)"),
      Option("--length", int, "steps per generated series (default: the "
             "training window)"),
      Option("--covariates", str, "static covariates of the generated "
             "series, comma-separated in the run's order (default: the "
             "train mean)"),
      Option("--start", str, "runs with a time input: the clock time HH:MM "
             "(actigraphy) or seconds since lights-off (hypnograms) of the "
             "first generated step (default: the typical train start)"),
  )
  report_options = (
      Option("--seeds", int, "seeds of the post-hoc discriminative and "
             "predictive scores (mean ± std)", 3),
      Option("--score-steps", int, "training steps of each post-hoc GRU "
             "(default: the run's eval_classifier_steps)", 0),
  )
  # What the family can model: "real", "categorical", "counts".
  value_kinds: ClassVar[tuple[str, ...]] = ("real",)

  @classmethod
  def validate_config(cls, config) -> None:
    validate_series_data_options(config.data)
    validate_recurrent_fields(config[cls.section], cls.section)

  # -- the config against the data ----------------------------------------------
  def resolve(self, config, dataset: Dataset) -> None:
    """Sets the section's derived fields from `dataset` (a new run)."""
    s = config[self.section]
    if dataset.modality != "series":
      raise DataError(
          f"{dataset.source}: dataset {dataset.name!r} holds {dataset.modality}"
          f" data; `medgen train {self.section}` models series (a WFDB "
          "record, a CSV of channels, or --data sines)")
    md = dataset.metadata
    _, window, channels = (int(d) for d in dataset.split("train")["x"].shape)
    norm = md.get("normalization", {})
    s.channels = channels
    s.channel_names = tuple(str(c) for c in md.get(
        "channels", [f"ch{i}" for i in range(channels)]))
    s.units = tuple(str(u) for u in md.get("units", [""] * channels))
    s.window = window
    s.rate = float(md.get("rate", 1.0))
    train = dataset.split("train")
    observed = train["x"][train["mask"]]
    s.unit_interval = bool(observed.size and observed.min() >= 0.0
                           and observed.max() <= 1.0)
    s.norm_kind = str(norm.get("kind", "none"))
    s.norm_offset = tuple(float(v) for v in norm.get("offset", [0.0] * channels))
    s.norm_scale = tuple(float(v) for v in norm.get("scale", [1.0] * channels))
    self._resolve_values(s, dataset, observed)
    if s.condition == "label":
      if "label" not in dataset.keys:
        raise ConfigError(
            f"--condition label: dataset {dataset.name!r} has no beat labels; "
            "use --segment beat with an annotated record, or drop --condition")
      s.class_names = tuple(str(c) for c in dataset.class_names)
      s.num_classes = len(s.class_names) or int(
          dataset.split("train")["label"].max()) + 1
    else:
      s.num_classes, s.class_names = 0, ()
    if "covariates" in dataset.keys:
      stats = md.get("covariate_normalization", {})
      s.num_covariates = dataset.example_shape("covariates")[0]
      s.covariate_names = tuple(str(c) for c in md.get("covariate_names", ()))
      s.covariate_offset = tuple(float(v) for v in stats.get("offset", ()))
      s.covariate_scale = tuple(float(v) for v in stats.get("scale", ()))
    else:
      s.num_covariates, s.covariate_names = 0, ()
      s.covariate_offset, s.covariate_scale = (), ()

  def _resolve_values(self, s, dataset: Dataset, observed) -> None:
    """value_kind, categories, count scale, time input and domain."""
    md = dataset.metadata
    s.value_kind = str(md.get("values", "real"))
    if s.value_kind not in self.value_kinds:
      raise DataError(
          f"{dataset.source}: dataset {dataset.name!r} holds "
          f"{s.value_kind} values; `medgen train {self.section}` models "
          f"{' or '.join(self.value_kinds)} series (use `medgen train rnn`)")
    s.category_names = tuple(str(c) for c in md.get("category_names", ()))
    s.categories = len(s.category_names)
    if s.value_kind == "categorical" and s.categories < 2:
      raise DataError(f"{dataset.source}: categorical series need at least "
                      "2 category names in the metadata")
    s.count_log_mean = (float(np.log1p(observed.mean())) if
                        s.value_kind == "counts" and observed.size else 0.0)
    s.time_kind = str(md.get("time_kind", ""))
    train = dataset.split("train")
    # Generated series start at lights-off (elapsed time 0) or at the
    # train windows' typical clock time (midnight for calendar days).
    s.time_start = (float(np.median(train["t0"])) if s.time_kind == "clock"
                    and "t0" in dataset.keys else 0.0)
    if s.time_kind and "t0" not in dataset.keys:
      raise DataError(f"{dataset.source}: time input {s.time_kind!r} but no "
                      "'t0' (window start times) in the dataset")
    s.domain = str(md.get("domain", ""))

  def check_resolved(self, config) -> None:
    s = config[self.section]
    missing = [k for k in DERIVED if s[k] is None]
    if missing:
      raise ConfigError(
          f"{self.section}.{missing[0]} is not set; it is derived from the data "
          "when a run starts, so build the task from a run's config.json or "
          "with a dataset")

  @property
  def conditional(self) -> bool:
    return bool(self.config[self.section].num_classes)

  # -- batches ------------------------------------------------------------------
  def to_batch(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    x = np.asarray(arrays["x"], np.float32)
    out = {"x": x, "mask": np.asarray(arrays["mask"], bool)}
    out["label"] = (np.asarray(arrays["label"], np.int32) if self.conditional
                    else np.zeros((x.shape[0],), np.int32))
    if self.config[self.section].num_covariates:
      out["covariates"] = np.asarray(arrays["covariates"], np.float32)
    if self.config[self.section].time_kind:
      out["t0"] = np.asarray(arrays["t0"], np.float32)
    return out

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return self.to_batch(split.take(sampler.indices(step)))

  def stacked_batch(self, split: Split, sampler: IndexSampler, step: int,
                    n: int) -> dict[str, np.ndarray]:
    """n real batches for one step, stacked on a leading axis [n, batch, ...]
    (a GAN step's several updates, each on its own batch); batch_axes of
    such a task is 1 for every key."""
    parts = [self.to_batch(split.take(sampler.indices(step * n + k)))
             for k in range(n)]
    return {k: np.stack([p[k] for p in parts]) for k in parts[0]}

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    """Generated windows against held-out ones (`evaluate_samples`)."""
    name, real = self.held_out(dataset)
    return self.evaluate_samples(state, name, real,
                                 jax.random.key(self.config.seed + 17))

  def held_out(self, dataset: Dataset) -> tuple[str, dict[str, np.ndarray]]:
    """(split name, batch) of up to eval_examples held-out windows (val, else
    test; the train split only when a dataset has nothing else, and then the
    scores are named train_*)."""
    name = next((n for n in ("val", "test") if n in dataset.splits), "train")
    split = dataset.split(name)
    n = min(len(split), self.config[self.section].eval_examples)
    idx = np.sort(np.random.default_rng(0).permutation(len(split))[:n])
    return name, self.to_batch(split.take(idx))

  # -- units ----------------------------------------------------------------------
  def denormalize(self, x: np.ndarray) -> np.ndarray:
    """Normalised values [..., C] -> the record's units (mV, mmHg, ...)."""
    s = self.config[self.section]
    return (np.asarray(x, np.float32) * np.asarray(s.norm_scale, np.float32)
            + np.asarray(s.norm_offset, np.float32))

  def normalize(self, x: np.ndarray) -> np.ndarray:
    s = self.config[self.section]
    return ((np.asarray(x, np.float32) - np.asarray(s.norm_offset, np.float32))
            / np.asarray(s.norm_scale, np.float32))

  # -- sampling options -------------------------------------------------------------
  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    label = options.get("label")
    k = self.config[self.section].num_classes
    if label is not None:
      if not k:
        raise ConfigError("--label needs a run trained with --condition label")
      if not 0 <= label < k:
        names = self.config[self.section].class_names
        raise ConfigError(f"--label {label}: expected 0..{k - 1} "
                          f"({', '.join(names)})")
    if options.get("covariates") is not None:
      self.sample_covariates(1, options)
    if options.get("length") is not None:
      check_int(options["length"], "--length", 2, 10**6)
    if options.get("temperature") is not None:
      check_real(options["temperature"], "--temperature", 0.0)
    if options.get("start") is not None:
      if not self.config[self.section].time_kind:
        raise ConfigError("--start needs a run with a time input "
                          "(hypnogram: or actigraphy: data)")
      parse_start(options["start"])

  def sample_starts(self, n: int, options: Mapping[str, Any]
                    ) -> np.ndarray | None:
    """t0 [n] seconds of n generated series (None without a time input)."""
    s = self.config[self.section]
    if not s.time_kind:
      return None
    start = options.get("start")
    t0 = parse_start(start) if start is not None else float(s.time_start)
    return np.full((n,), t0, np.float32)

  def sample_labels(self, n: int, options: Mapping[str, Any]) -> np.ndarray:
    """The class of each of n samples: --label, else cycling over classes."""
    k = self.config[self.section].num_classes
    label = options.get("label")
    if label is not None:
      return np.full((n,), label, np.int32)
    return (np.arange(n) % max(k, 1)).astype(np.int32)

  def sample_covariates(self, n: int,
                        options: Mapping[str, Any]) -> np.ndarray | None:
    """Standardised covariates [n, S] of n samples (None without any)."""
    s = self.config[self.section]
    if not s.num_covariates:
      if options.get("covariates") is not None:
        raise ConfigError("--covariates needs a run trained with "
                          "--covariates FILE")
      return None
    text = options.get("covariates")
    if text is None:
      return np.zeros((n, s.num_covariates), np.float32)
    try:
      values = np.asarray([float(v) for v in str(text).split(",")])
    except ValueError:
      values = np.zeros(0)
    if values.shape != (s.num_covariates,) or not np.isfinite(values).all():
      raise ConfigError(
          f"--covariates {text!r}: expected {s.num_covariates} numbers for "
          f"{', '.join(s.covariate_names)}")
    z = (values - np.asarray(s.covariate_offset)) / np.asarray(
        s.covariate_scale)
    return np.repeat(z[None].astype(np.float32), n, axis=0)

  def package(self, x_norm: np.ndarray, labels: np.ndarray,
              t0: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Generated normalised windows -> what `medgen sample` writes."""
    x_norm = np.asarray(x_norm, np.float32)
    out = {"x": self.denormalize(x_norm), "x_norm": x_norm,
           "mask": np.ones(x_norm.shape[:2], bool)}
    if self.conditional:
      out["label"] = labels
    if t0 is not None:
      out["t0"] = np.asarray(t0, np.float32)
    return out

  # -- evaluation -------------------------------------------------------------------
  def sample_scores(self, real: Mapping[str, np.ndarray],
                    fake: Mapping[str, np.ndarray], prefix: str) -> dict[str, float]:
    """MMD, spectral distance and (if enabled) the discriminative score of
    generated windows against held-out real ones (normalised units)."""
    s = self.config[self.section]
    rx, rm = real["x"], real["mask"]
    fx, fm = fake["x_norm"], fake["mask"]
    if s.value_kind == "counts":   # counts span decades: compare log1p
      rx, fx = np.log1p(np.maximum(rx, 0.0)), np.log1p(np.maximum(fx, 0.0))
    out = {}
    # MMD and spectra take complete windows only: a held-out split of a few
    # gappy windows (a short hypnogram) has none, and then they are left
    # out rather than stopping the run.
    complete = min(int(rm.all(1).sum()), int(fm.all(1).sum()))
    if complete >= 2:
      out[f"{prefix}_mmd"] = float(seq_metrics.mmd(rx, fx, rm, fm))
      rate = float(s.rate)
      _, rs = seq_metrics.power_spectra(rx, rm, rate)
      _, fs = seq_metrics.power_spectra(fx, fm, rate)
      out[f"{prefix}_spectral_distance"] = float(
          seq_metrics.spectral_distance(rs, fs))
    if s.eval_classifier_steps and min(len(rx), len(fx)) >= 4:
      out[f"{prefix}_discriminative"] = float(seq_metrics.discriminative_score(
          rx, rm, fx, fm, seed=SCORE_SEED, steps=s.eval_classifier_steps))
    view = domain_view(s.domain)
    if view is not None:
      out.update(view.scores(self, real, fake, prefix))
    return out

  def trace_picture(self, real_x: np.ndarray | None, real_mask: np.ndarray | None,
                    fake_x: np.ndarray) -> np.ndarray:
    """[1, H, W, 3] in [-1, 1]: real windows (if given) above generated."""
    groups, masks = [], []
    if real_x is not None:
      groups.append(self.denormalize(real_x[:TRACES_SHOWN]))
      masks.append(real_mask[:TRACES_SHOWN])
    groups.append(self.denormalize(fake_x[:TRACES_SHOWN]))
    masks.append(np.ones(fake_x[:TRACES_SHOWN].shape[:2], bool))
    return traces.trace_panel(groups, masks)

  def evaluate_samples(self, state, name: str, real: Mapping[str, np.ndarray],
                       key) -> Outputs:
    """Generated windows against the held-out batch `real` of split `name`
    (from `held_out`): scores and traces."""
    n = real["x"].shape[0]
    options = {"length": real["x"].shape[1]}
    fake = self.generate(state, key, n, options)
    out = Outputs(scalars={f"eval/{k}": v for k, v in
                           self.sample_scores(real, fake, name).items()})
    view = domain_view(self.config[self.section].domain)
    out.images["traces"] = (
        view.picture(self, real, fake) if view is not None else
        self.trace_picture(real["x"], real["mask"], fake["x_norm"]))
    out.arrays["samples"] = fake["x"][:TRACES_SHOWN * 4]   # record units
    return out

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """TimeGAN's scores over seeds on the TEST windows, beside real-data
    references, with MMD, spectra and the traces picture.

    The discriminative score trains a GRU to tell generated from real test
    windows (held-out accuracy - 0.5; 0 = indistinguishable); the
    predictive score trains a next-step GRU on generated windows and
    measures its MAE on the real test windows (train on synthetic, test on
    real), beside the same GRU trained on as many real TRAINING windows
    (train on real, test on real): the score a perfect generator reaches.
    """
    import jax  # noqa: PLC0415
    s = self.config[self.section]
    seeds = int(context.options.get("seeds") or 3)
    check_int(seeds, "--seeds", 1, 101)
    steps = int(context.options.get("score_steps") or
                s.eval_classifier_steps or 300)
    check_int(steps, "--score-steps", 1, 1_000_001)
    view = held_out_view(dataset)
    name, real = self.held_out(view)
    if context.n:
      test = view.split(name)
      idx = np.sort(np.random.default_rng(context.seed).permutation(
          len(test))[:context.n])
      real = self.to_batch(test.take(idx))
    n = real["x"].shape[0]
    key = jax.random.key(context.seed)
    outputs = self.evaluate_samples(state, name, real, key)
    fake = self.generate(state, key, n, {"length": real["x"].shape[1]})
    single = f"eval/{name}_discriminative"  # one seed: replaced below
    report = Report(scalars={k[len("eval/"):]: v
                             for k, v in outputs.scalars.items()
                             if k != single},
                    images={k: (v, None) for k, v in outputs.images.items()})
    rx, rm, fx, fm = real["x"], real["mask"], fake["x_norm"], fake["mask"]
    if s.value_kind == "counts":
      rx, fx = np.log1p(np.maximum(rx, 0.0)), np.log1p(np.maximum(fx, 0.0))
    seed_list = range(SCORE_SEED, SCORE_SEED + seeds)
    rows = []
    if min(len(rx), len(fx)) >= 4:
      mean, std = seq_metrics.repeat(lambda seed: seq_metrics.discriminative_score(
          rx, rm, fx, fm, seed=seed, steps=steps), seed_list)
      rows.append({"score": "discriminative (0 best)", "generated": mean,
                   "± std": std, "real reference": 0.0})
      report.scalars[f"{name}_discriminative_mean"] = mean
      report.scalars[f"{name}_discriminative_std"] = std
    if s.value_kind == "real" and rx.shape[1] >= 2:
      train = self.to_batch(view.split("train").take(np.sort(
          np.random.default_rng(context.seed).permutation(
              len(view.split("train")))[:n])))
      tstr = seq_metrics.repeat(lambda seed: seq_metrics.predictive_score(
          fx, fm, rx, rm, seed=seed, steps=steps), seed_list)
      trtr = seq_metrics.repeat(lambda seed: seq_metrics.predictive_score(
          train["x"], train["mask"], rx, rm, seed=seed, steps=steps),
                                seed_list)
      rows.append({"score": "predictive MAE (lower better)",
                   "generated": tstr[0], "± std": tstr[1],
                   "real reference": trtr[0]})
      report.scalars[f"{name}_predictive_mean"] = tstr[0]
      report.scalars[f"{name}_predictive_std"] = tstr[1]
      report.scalars[f"{name}_predictive_real_train"] = trtr[0]
    report.tables["TimeGAN scores"] = rows
    report.facts.update({"held_out_split": name, "windows": n,
                         "score_seeds": seeds, "score_steps": steps})
    report.notes.append(
        f"Scores compare {n} generated windows with {n} real {name.upper()} "
        f"windows (normalised units), each post-hoc GRU trained {steps} "
        f"steps, {seeds} seeds (mean ± std). The predictive score's real "
        "reference trains the same GRU on as many real training windows. "
        "`traces.png`: real windows above generated ones.")
    return report

  # -- attributions -----------------------------------------------------------------
  def attribution_windows(self, dataset: Dataset, k: int, seed: int
                          ) -> tuple[str, dict[str, np.ndarray]]:
    """(split name, batch) of k random held-out windows (test first)."""
    view = held_out_view(dataset)
    name, _ = self.held_out(view)
    split = view.split(name)
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:k])
    return name, self.to_batch(split.take(idx))

  def discriminator_report(self, report: Report, state, dataset: Dataset,
                           context: ReportContext, score, what: str) -> Report:
    """What a GAN's discriminator looks at: integrated gradients of
    score(x, extras) -> [b] (higher: more real; `what` names it) on ATTRIBUTED
    generated windows above as many real held-out ones
    (`discriminator_attributions`), and the mean |attribution| per channel
    of each kind in a table."""
    split, real = self.attribution_windows(dataset, ATTRIBUTED, context.seed)
    k, length = len(real["x"]), real["x"].shape[1]
    fake = self.generate(state, jax.random.key(context.seed + 1), k,
                         {"length": length})
    fake = self.to_batch({"x": fake["x_norm"], "mask": fake["mask"],
                          "label": self.sample_labels(k, {}),
                          "covariates": self.sample_covariates(k, {}),
                          "t0": self.sample_starts(k, {})})
    both = {key: np.concatenate([fake[key], real[key]]) for key in real}
    titles = ([f"generated {i + 1}" for i in range(k)]
              + [f"real {split} {i + 1}" for i in range(k)])
    attr, _ = self.series_attributions(
        report, "discriminator_attributions", score, both, titles,
        f"{what}, on {k} generated windows above {k} real {split.upper()} "
        "windows")
    weight = both["mask"][..., None].astype(np.float32)          # [2k, T, 1]
    mean_abs = [(np.abs(attr[part]) * weight[part]).sum((0, 1))
                / max(float(weight[part].sum()), 1.0)              # [C]
                for part in (slice(k, None), slice(None, k))]
    report.tables["Discriminator attributions per channel"] = [
        {"channel": name, f"real {split} mean absolute attribution": float(r),
         "generated mean absolute attribution": float(g)}
        for name, r, g in zip(self.config[self.section].channel_names,
                              *mean_abs)]
    return report

  def series_attributions(self, report: Report, name: str, score,
                          batch: Mapping[str, np.ndarray], titles, what: str
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of score(x, extras) -> [b] with respect to the
    windows batch["x"] [b, T, C] (normalised), from the all-zero window,
    drawn with `series_overlay` as `name` with a note of what it shows.

    Args:
      report: gets the picture, a note and the fact `<name>_max_gap`.
      score: (x [b, T, C], extras {"mask", "label", ...} of the same b) ->
        [b]; a pure JAX function (its parameters closed over).
      batch: "x" and the extras (`to_batch`'s schema).
      titles: one label per window.
      what: what the score is, for the note.

    Returns:
      (attributions float32 [b, T, C], completeness gap [b] = sum(attr) -
      (score(x) - score(0))).
    """
    from medgen_jax.metrics import attribution  # noqa: PLC0415
    f = attribution.WithExtras(score, {k: v for k, v in batch.items()
                                       if k != "x"})
    attr, delta = attribution.integrated_gradients(
        f, batch["x"], steps=IG_STEPS, batch_size=IG_BATCH)
    attr, delta = np.asarray(attr), np.asarray(delta)
    gain = attr.reshape(len(attr), -1).sum(1) - delta   # score(x) - score(0)
    report.images[name] = (attribution.series_overlay(
        self.denormalize(batch["x"]), attr, titles=list(titles)), None)
    gap = float(np.max(np.abs(delta)))
    report.facts[f"{name}_max_gap"] = gap
    report.notes.append(
        f"`{name}.png`: integrated gradients of {what}, {IG_STEPS} points "
        "from the all-zero window (normalised units: the train mean of "
        "z-scored records). Each window is drawn in the record's units, "
        "under it one strip per channel (red: the step raises the score, "
        "blue: lowers it). Completeness gap max |sum(attr) - (f(x) - "
        f"f(0))| = {gap:.3g}, against max |f(x) - f(0)| = "
        f"{float(np.max(np.abs(gain))):.3g}.")
    return attr, delta

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    if "x" not in samples:
      return Outputs()
    view = domain_view(self.config[self.section].domain)
    if view is not None:
      fake = {"x_norm": self.normalize(samples["x"]),
              "mask": samples.get("mask", np.ones(samples["x"].shape[:2],
                                                  bool))}
      if "t0" in samples:
        fake["t0"] = samples["t0"]
      return Outputs(images={"traces": view.picture(self, None, fake)})
    x = self.normalize(samples["x"])
    return Outputs(images={"traces": self.trace_picture(None, None, x)})
