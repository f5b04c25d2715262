"""SurvivalTask: the survival family as the loop, the CLI and `medgen
sample` / `medgen predict` see it."""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import survival as survival_config
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.families.survival import effect as effect_lib
from medgen_jax.families.survival import step as surv_step
from medgen_jax.metrics import survival as metrics_lib
from medgen_jax.models.survival import SurvivalNet
from medgen_jax.objectives import survival as surv_lib
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import (TASKS, BaseTask, Flag, Option, Outputs,
                                   Prediction, Report, ReportContext)
from medgen_jax.train.update import make_gradient_fn

log = logging.getLogger("medgen_jax")

CHUNK = 512          # patients per compiled prediction call (padded)
CURVE_POINTS = 200   # grid of the curves used for RMST, sampling, pictures
RISK_GROUPS = 3      # low / medium / high predicted risk in the pictures
PREDICT_POINTS = 10  # about this many default curve columns in `medgen predict`
IG_STEPS = 256       # integrated-gradients points of the risk attributions
                     # (ReLU kinks: the gap shrinks only as 1 / steps)
IG_BATCH = 65536     # most patients through the network in one call


@TASKS.register("survival")
class SurvivalTask(BaseTask):
  """Neural Cox / logistic-hazard models of censored outcomes."""

  get_config = staticmethod(survival_config.get_config)
  flags = (
      Flag("--objective", "survival.objective", "cox | logistic_hazard"),
      Flag("--ties", "survival.ties", "cox: breslow | efron"),
      Flag("--hidden", "survival.hidden", "MLP widths, e.g. 64,64"),
      Flag("--dropout", "survival.dropout", "dropout rate on hidden units"),
      Flag("--weight-decay", "survival.weight_decay", "L2 on the weights"),
      Flag("--intervals", "survival.intervals",
           "logistic_hazard: number of discrete-time intervals"),
      Flag("--rank-weight", "survival.rank_weight",
           "logistic_hazard: weight of DeepHit's ranking term (0 = off)"),
      Flag("--encoder", "survival.encoder",
           "mlp | gru | lstm (a cell for longitudinal 'series' inputs)"),
      Flag("--horizons", "survival.horizons",
           "calibration horizons, e.g. 365,1825 (default: quartiles of the "
           "train event times)"),
      Flag("--time", "data.time_column", "files: column of follow-up times"),
      Flag("--event", "data.event_column",
           "files: column of event indicators (1 = event, 0 = censored)"),
      Flag("--treatment", "data.treatment_column",
           "column of the treatment arm (kept out of the covariates)"),
      Flag("--drop", "data.drop_columns", "columns not used as covariates"),
      Flag("--categorical", "data.categorical_columns",
           "numeric-coded columns to one-hot"),
      Flag("--missing", "data.missing", "impute (train medians / modes) | "
           "drop (rows with a missing cell)"),
      Flag("--folds", "data.folds", "k-fold cross-validation (0 = one split)"),
      Flag("--fold", "data.fold", "the held-out fold, 0..folds-1"),
      Flag("--test-fraction", "data.test_fraction",
           "held out when --folds is 0"),
  )
  sample_options = (
      Option("--input", str, "CSV of patients (the training covariates) whose "
             "outcomes to simulate; sample i is patient i mod rows"),
      Option("--arm", str, "treatment arm for every patient (default: the "
             "file's treatment column)"),
  )
  predict_options = (
      Option("--times", str, "comma-separated times of the curve columns "
             "(default: 10 points up to the longest train follow-up)"),
      Option("--arm", str, "a treatment arm for every patient, or 'all' for "
             "one curve per arm (default: the file's treatment column)"),
  )
  data_keys = ("x", "time", "event")
  resumable_fields = ("survival.bootstrap", "survival.eval_times")

  @classmethod
  def validate_config(cls, config) -> None:
    survival_config.validate_survival_config(config)

  def __init__(self, config, dataset: Dataset | None = None):
    s = config.survival
    self._train: Split | None = None
    if dataset is not None:
      self._resolve(config, dataset)
      self._train = dataset.split("train")
    for key in ("num_features", "encoding", "num_treatments", "series_shape",
                "time_max", "horizons_used"):
      if s[key] is None:
        raise ConfigError(
            f"survival.{key} is not set; it is derived from the data when a "
            "run starts, so build the task from a run's config.json or with "
            "a dataset")
    self.config = config
    self.cox = s.objective == "cox"
    self.cuts = None if self.cox else np.asarray(s.cuts, np.float64)
    self.series = bool(s.series_shape)
    self.arms = tuple(s.treatment_names or ())
    self.model = SurvivalNet(
        hidden=tuple(s.hidden),
        outputs=1 if self.cox else len(self.cuts) - 1,
        dropout=s.dropout, num_treatments=int(s.num_treatments),
        encoder=s.encoder if self.series else "mlp",
        rnn_hidden=s.rnn_hidden, linear_skip=s.linear_skip)
    self.step_cfg = surv_step.SurvivalStepConfig(
        model=self.model, objective=s.objective, ties=s.ties,
        weight_decay=s.weight_decay, rank_weight=s.rank_weight,
        rank_sigma=s.rank_sigma)
    self.train_step = surv_step.make_train_step(self.step_cfg,
                                                make_gradient_fn(config))
    self._predict = jax.jit(surv_step.make_predict(self.step_cfg))
    self._baseline_cache: tuple[int, np.ndarray, np.ndarray] | None = None
    self._restored_baseline: tuple[np.ndarray, np.ndarray] | None = None
    self._inputs_cache: dict[tuple, dict[str, np.ndarray]] = {}

  # -- resolving the config against the data ---------------------------------
  @staticmethod
  def _resolve(config, dataset: Dataset) -> None:
    s, t = config.survival, config.train
    keys = dataset.keys
    if "test" not in dataset.splits:
      raise DataError(f"{dataset.source}: dataset {dataset.name!r} has no "
                      "'test' split; survival scores are held out")
    if "series" in keys and s.encoder == "mlp":
      raise ConfigError(f"dataset {dataset.name!r} has longitudinal series; "
                        "read them with --encoder gru (or lstm)")
    if "series" not in keys and s.encoder != "mlp":
      raise ConfigError(f"--encoder {s.encoder} reads longitudinal series, "
                        f"but dataset {dataset.name!r} has none; use "
                        "--encoder mlp")
    train = dataset.split("train")
    time = np.asarray(train["time"], np.float64)
    event = np.asarray(train["event"]).astype(bool)
    if event.sum() < 2:
      raise DataError(f"{dataset.source}: the train split has "
                      f"{int(event.sum())} events; a survival model needs "
                      "at least 2")
    s.num_features = int(dataset.example_shape("x")[0])
    s.feature_names = tuple(str(n) for n in dataset.metadata.get(
        "feature_names", [f"x{i}" for i in range(s.num_features)]))
    s.encoding = json.dumps(dataset.metadata.get("encoding", {}),
                            sort_keys=True)
    if "treatment" in keys:
      names = tuple(str(n) for n in dataset.metadata.get(
          "treatment_names", ()))
      s.treatment_names = names or tuple(
          str(i) for i in range(int(train["treatment"].max()) + 1))
      s.num_treatments = len(s.treatment_names)
    else:
      s.num_treatments, s.treatment_names = 0, ()
    s.series_shape = (dataset.example_shape("series") if "series" in keys
                      else ())
    if s.objective == "logistic_hazard":
      cuts = surv_lib.make_cuts(time, event, s.intervals, s.cut_scheme)
      s.cuts = tuple(float(c) for c in cuts)
    s.time_max = float(time.max())
    horizons = tuple(float(h) for h in s.horizons) or tuple(
        float(q) for q in np.quantile(time[event], [0.25, 0.5, 0.75]))
    s.horizons_used = horizons
    if t.batch_size > len(train):
      log.info("--batch-size %d is more than the %d training patients; "
               "using full batches of %d", t.batch_size, len(train),
               len(train))
      t.batch_size = len(train)

  # -- state and data ----------------------------------------------------------
  def init_state(self, key: jax.Array) -> TrainState:
    batch = self._dummy_batch(2)
    params = self.model.init(key, batch["x"], batch.get("treatment"),
                             batch.get("series"), batch.get("mask"))["params"]
    return TrainState.create(
        apply_fn=self.model.apply, params=params,
        tx=make_optimizer(self.config.optimizer,
                          self.config.optimizer.learning_rate,
                          self.config.train.steps))

  def _dummy_batch(self, n: int) -> dict[str, jax.Array]:
    s = self.config.survival
    b = {"x": jnp.zeros((n, s.num_features)),
         "treatment": jnp.zeros((n,), jnp.int32)}
    if self.series:
      b["series"] = jnp.zeros((n, *s.series_shape))
      b["mask"] = jnp.ones((n, s.series_shape[0]), bool)
    return b

  def to_batch(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dataset arrays of some patients -> the step's batch schema."""
    n = len(arrays["x"])
    b = {"x": np.asarray(arrays["x"], np.float32),
         "treatment": (np.asarray(arrays["treatment"], np.int32)
                       if "treatment" in arrays else np.zeros((n,), np.int32))}
    if "time" in arrays:
      b["time"] = np.asarray(arrays["time"], np.float32)
      b["event"] = np.asarray(arrays["event"], np.float32)
      if not self.cox:
        d = surv_lib.discretize(b["time"], b["event"], self.cuts)
        b["interval"] = np.asarray(d.interval, np.int32)
        b["survived_last"] = np.asarray(d.survived_last, np.float32)
    if self.series:
      b["series"] = np.asarray(arrays["series"], np.float32)
      b["mask"] = np.asarray(arrays["mask"], bool)
    return b

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return self.to_batch(split.take(sampler.indices(step)))

  # -- predictions ---------------------------------------------------------------
  def outputs(self, state, arrays: Mapping[str, np.ndarray],
              treatment: int | None = None) -> np.ndarray:
    """The model's outputs [n, outputs] for patients, in padded chunks;
    `treatment` sets every patient's arm (counterfactual prediction)."""
    keys = ("x", "treatment", "series", "mask")
    b = {k: v for k, v in self.to_batch(
        {k: arrays[k] for k in arrays if k in keys}).items() if k in keys}
    if treatment is not None:
      b["treatment"] = np.full_like(b["treatment"], treatment)
    n, parts = len(b["x"]), []
    for start in range(0, n, CHUNK):
      chunk = {k: v[start:start + CHUNK] for k, v in b.items()}
      m = len(chunk["x"])
      if m < CHUNK:
        chunk = {k: np.concatenate([v, np.repeat(v[-1:], CHUNK - m, 0)])
                 for k, v in chunk.items()}
      parts.append(np.asarray(self._predict(state.params, chunk))[:m])
    return np.concatenate(parts)

  def baseline(self, state) -> tuple[np.ndarray, np.ndarray]:
    """Cox: Breslow's baseline cumulative hazard on the training split at
    this state's parameters (from the checkpoint when restored)."""
    step = int(jax.device_get(state.step))
    if self._baseline_cache and self._baseline_cache[0] == step:
      return self._baseline_cache[1:]
    if self._train is None:
      if self._restored_baseline is None:
        raise ConfigError("this Cox run's checkpoint holds no baseline "
                          "hazard; restore it with medgen_jax.train.loop."
                          "load_run")
      return self._restored_baseline
    train = self._train.arrays
    risk = self.outputs(state, train)[:, 0]
    times, cum = surv_lib.breslow_baseline(risk, train["time"],
                                           train["event"])
    times, cum = np.asarray(times, np.float64), np.asarray(cum, np.float64)
    self._baseline_cache = (step, times, cum)
    return times, cum

  def risk_and_curves(self, state, arrays, times: np.ndarray,
                      treatment: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(risk [n], survival [n, m] at `times`); higher risk = earlier event."""
    out = self.outputs(state, arrays, treatment)
    times = np.asarray(times, np.float64)
    if self.cox:
      risk = out[:, 0].astype(np.float64)
      bt, bh = self.baseline(state)
      surv = np.asarray(surv_lib.cox_survival(risk, bt, bh, times))
      return risk, surv
    at_cuts = np.asarray(surv_lib.hazard_survival(out), np.float64)  # [n, K]
    surv = np.asarray(surv_lib.interpolate_survival(at_cuts, self.cuts, times))
    # Risk: minus the expected survival time within the grid.
    widths = np.diff(self.cuts)
    before = np.concatenate([np.ones((len(at_cuts), 1)), at_cuts[:, :-1]], 1)
    risk = -((before + at_cuts) / 2.0 * widths).sum(1)
    return risk, np.asarray(surv, np.float64)

  def curves_at(self, state, arrays, *time_sets: np.ndarray,
                treatment: int | None = None) -> tuple[np.ndarray, ...]:
    """(risk, survival at each of `time_sets`) from one pass of the model."""
    sizes = np.cumsum([len(t) for t in time_sets])[:-1]
    risk, surv = self.risk_and_curves(state, arrays,
                                      np.concatenate(time_sets), treatment)
    return (risk, *np.split(surv, sizes, axis=1))

  def curve_grid(self) -> np.ndarray:
    return np.linspace(0.0, self.config.survival.time_max, CURVE_POINTS)

  # -- evaluation ----------------------------------------------------------------
  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    s = self.config.survival
    train, test = dataset.split("train"), dataset.split("test")
    tt, te = np.asarray(test["time"], np.float64), np.asarray(test["event"])
    scalars: dict[str, float] = {}
    try:
      times = metrics_lib.evaluation_times(tt, te, n=s.eval_times)
    except ConfigError as e:
      log.info("no held-out survival scores at step %d: %s", step, e)
      times = np.zeros(0)
    horizons = np.array([h for h in s.horizons_used if h < tt.max()])
    grid = self.curve_grid()
    risk, surv, at_h, on_grid = self.curves_at(state, test.arrays, times,
                                               horizons, grid)
    if len(times):
      try:
        scalars.update(metrics_lib.survival_metrics(
            train["time"], train["event"], tt, te, risk, surv, times,
            tau=float(times[-1])))
      except ConfigError as e:
        log.info("no held-out survival scores at step %d: %s", step, e)
    for j, h in enumerate(horizons):
      cal = metrics_lib.calibration(tt, te, at_h[:, j], h,
                                    groups=min(10, len(tt)))
      scalars[f"ici_{h:.3g}"] = float(cal["ici"])
    if len(self.arms) >= 2:
      for row in self.effects(state, test.arrays):
        name = row["arm"]
        scalars[f"delta_rmst_{name}"] = row["delta_rmst"]["mean"]
        if "hr" in row:
          scalars[f"hr_{name}"] = row["hr"]["mean"]
    out = Outputs(scalars=scalars)
    out.images["survival_curves"] = self.picture(
        test.arrays, risk, on_grid,
        f"{self.config.data.name} test split, step {step}")
    return out

  # -- the report ----------------------------------------------------------------
  def risk_score(self, params):
    """(x [b, f] encoded covariates, extras {"treatment", "series", "mask"})
    -> [b]: Cox's log-risk, or for the logistic hazard the risk of
    `risk_and_curves` (minus the expected survival time within the grid)."""
    cfg, cuts = self.step_cfg, self.cuts

    def score(x, extras):
      out = surv_step.apply_model(cfg, params, dict(extras, x=x))  # [b, K]
      if self.cox:
        return out[:, 0]
      at_cuts = surv_lib.hazard_survival(out)                       # [b, K]
      before = jnp.concatenate([jnp.ones_like(at_cuts[:, :1]),
                                at_cuts[:, :-1]], 1)
      widths = jnp.asarray(np.diff(cuts), at_cuts.dtype)
      return -((before + at_cuts) / 2.0 * widths).sum(1)

    return score

  def risk_attributions(self, state, arrays, baseline
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of `risk_score` with respect to each patient's
    covariate vector (the model's input space) from `baseline` [f]:
    (attributions [n, f], completeness gap [n] = sum(attr) - (risk(x) -
    risk(baseline)))."""
    from medgen_jax.metrics import attribution  # noqa: PLC0415
    b = self.to_batch({k: arrays[k] for k in arrays
                       if k in ("x", "treatment", "series", "mask")})
    f = attribution.WithExtras(self.risk_score(state.params),
                               {k: v for k, v in b.items() if k != "x"})
    attr, delta = attribution.integrated_gradients(
        f, b["x"], np.asarray(baseline, np.float32)[None], steps=IG_STEPS,
        batch_size=IG_BATCH)
    return np.asarray(attr), np.asarray(delta)

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """The held-out evaluation (`BaseTask.report`) plus the table "Risk
    attributions": integrated gradients of each test patient's log-risk
    over its covariates, from the train split's mean covariate vector."""
    report = super().report(state, dataset, context)
    train, test = dataset.split("train"), dataset.split("test").arrays
    baseline = np.asarray(train["x"], np.float64).mean(0)      # [f]
    attr, delta = self.risk_attributions(state, test, baseline)
    names = self.config.survival.feature_names
    report.tables["Risk attributions"] = [
        {"covariate": name, "mean attribution": float(attr[:, j].mean()),
         "mean absolute attribution": float(np.abs(attr[:, j]).mean())}
        for j, name in enumerate(names)]
    gap = float(np.max(np.abs(delta)))
    report.facts["risk_attribution_max_gap"] = gap
    what = "log-risk" if self.cox else "risk (minus expected survival time)"
    report.notes.append(
        f"Risk attributions: integrated gradients ({IG_STEPS} points) of the "
        f"model's {what} of each of the {len(attr)} TEST patients over its "
        "encoded covariates, from the train split's mean covariate vector "
        "(arm and series held at the patient's own); per patient they sum "
        f"to {what}(patient) - {what}(mean patient) up to the completeness "
        f"gap, here at most {gap:.3g}.")
    return report

  def tau(self) -> float:
    """RMST horizon: the largest calibration horizon."""
    return float(max(self.config.survival.horizons_used))

  def effects(self, state, arrays) -> list[dict]:
    """Counterfactual effects of every arm against the first (effect.py)."""
    grid = self.curve_grid()
    return effect_lib.arm_effects(
        lambda a: self.risk_and_curves(state, arrays, grid, treatment=a),
        self.arms, grid, self.tau(), self.config.survival.bootstrap,
        cox=self.cox, seed=self.config.seed)

  def picture(self, arrays, risk: np.ndarray, surv: np.ndarray,
              title: str) -> np.ndarray:
    """Kaplan–Meier (when outcomes are known) vs mean predicted survival in
    tertiles of predicted risk, from the patients' risks [n] and curves
    [n, CURVE_POINTS] on `curve_grid()`: a [1, H, W, 3] image in [-1, 1]."""
    from medgen_jax.survival_pictures import survival_panel
    grid = self.curve_grid()
    order = np.argsort(risk, kind="stable")
    groups = []
    names = ("low", "medium", "high") if RISK_GROUPS == 3 else None
    for g, idx in enumerate(np.array_split(order, RISK_GROUPS)):
      if not len(idx):
        continue
      group = {"name": f"{names[g] if names else g} risk (n={len(idx)})",
               "times": grid, "surv": surv[idx].mean(0)}
      if "time" in arrays and "event" in arrays:
        kt, ks = metrics_lib.kaplan_meier(np.asarray(arrays["time"])[idx],
                                          np.asarray(arrays["event"])[idx])
        group["km_times"], group["km_surv"] = kt, ks
      groups.append(group)
    return survival_panel(groups, title=title)

  # -- checkpoints -------------------------------------------------------------
  def checkpoint_metadata(self, state) -> dict[str, Any]:
    if not self.cox or self._train is None:
      return {}
    times, cum = self.baseline(state)
    return {"baseline_times": [float(t) for t in times],
            "baseline_cum_hazard": [float(h) for h in cum]}

  def restore_metadata(self, metadata: Mapping[str, Any]) -> None:
    if self.cox and "baseline_times" in metadata:
      self._restored_baseline = (
          np.asarray(metadata["baseline_times"], np.float64),
          np.asarray(metadata["baseline_cum_hazard"], np.float64))

  # -- patients from a file -----------------------------------------------------
  def read_patients(self, path: str) -> dict[str, np.ndarray]:
    """A CSV of patients encoded as in training (data/survival.py)."""
    key = (str(path),)
    if key not in self._inputs_cache:
      from medgen_jax.data import survival_tables as tables
      encoding = json.loads(self.config.survival.encoding)
      header, rows = tables.read_table(pathlib.Path(path))
      encoded = tables.encode_rows(header, rows, encoding, str(path))
      arrays = {"x": encoded["x"]}
      for k in ("treatment", "time", "event"):
        if encoded.get(k) is not None:
          arrays[k] = encoded[k]
      self._inputs_cache[key] = arrays
    return self._inputs_cache[key]

  def _arm_index(self, name: str, flag: str) -> int:
    if not self.arms:
      raise ConfigError(f"{flag} {name}: this run has no treatment arms")
    if name not in self.arms:
      raise ConfigError(f"{flag} {name!r}: unknown arm; the run's arms are "
                        f"{', '.join(self.arms)}")
    return self.arms.index(name)

  def _arms_of(self, arrays, arm: str | None, flag: str) -> np.ndarray | None:
    """Every patient's arm: --arm, else the file's column (None: no arms)."""
    if not self.arms:
      if arm:
        self._arm_index(arm, flag)
      return None
    if arm:
      return np.full(len(arrays["x"]), self._arm_index(arm, flag), np.int32)
    if "treatment" not in arrays:
      raise ConfigError(f"the input has no treatment column; pass {flag} "
                        f"with one of {', '.join(self.arms)}")
    return np.asarray(arrays["treatment"], np.int32)

  # -- sampling ------------------------------------------------------------------
  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    if not options.get("input"):
      raise ConfigError("medgen sample for a survival run needs --input "
                        "patients.csv: the covariates whose outcomes to "
                        "simulate")
    if options.get("arm"):
      self._arm_index(options["arm"], "--arm")

  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Outcomes simulated from the fitted hazards: patient i mod rows of
    --input, under --arm (or the file's arms): time [n], event [n] (0 when
    no event happens before the longest train follow-up), patient [n]."""
    if not options.get("input"):
      raise ConfigError("medgen sample for a survival run needs --input "
                        "patients.csv")
    patients = self.read_patients(options["input"])
    idx = np.arange(n) % len(patients["x"])
    arrays = {k: v[idx] for k, v in patients.items()
              if k in ("x", "treatment", "series", "mask")}
    arms = self._arms_of(patients, options.get("arm"), "--arm")
    if arms is not None:
      arrays["treatment"] = arms[idx]
    grid = self.curve_grid()
    _, surv = self.risk_and_curves(state, arrays, grid)
    u = np.asarray(jax.random.uniform(key, (n,)), np.float64)
    time, event = effect_lib.sample_times(surv, grid, u)
    out = {"time": time, "event": event, "patient": idx.astype(np.int32)}
    if arms is not None:
      out["treatment"] = arrays["treatment"].astype(np.int32)
    return out

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    """Kaplan–Meier curves of the simulated outcomes, one per arm."""
    from medgen_jax.survival_pictures import survival_panel
    arms = samples.get("treatment")
    groups = []
    for a in (np.unique(arms) if arms is not None else [None]):
      sel = np.ones(len(samples["time"]), bool) if a is None else arms == a
      kt, ks = metrics_lib.kaplan_meier(samples["time"][sel],
                                        samples["event"][sel])
      name = "simulated" if a is None else f"simulated: {self.arms[int(a)]}"
      groups.append({"name": f"{name} (n={int(sel.sum())})", "km_times": kt,
                     "km_surv": ks, "times": kt, "surv": ks})
    return Outputs(images={"samples": survival_panel(
        groups, title="Kaplan-Meier of simulated outcomes")})

  # -- medgen predict -----------------------------------------------------------
  def predict(self, state, input_path: str,
              options: Mapping[str, Any]) -> Prediction:
    """Survival curves of the patients of a CSV (columns S(t) per time, and
    RMST), with a picture of predicted (and, when the file has outcomes,
    Kaplan–Meier) curves by tertile of predicted risk."""
    patients = self.read_patients(input_path)
    times = self._predict_times(options.get("times"))
    arm = options.get("arm") or ""
    table: dict[str, np.ndarray] = {
        "patient": np.arange(1, len(patients["x"]) + 1)}
    if arm == "all" and self.arms:
      arm_list = [(a, f"{name}:") for a, name in enumerate(self.arms)]
    else:
      arms = self._arms_of(patients, arm, "--arm")
      if arms is not None:
        patients = dict(patients, treatment=arms)
        table["arm"] = np.asarray([self.arms[a] for a in arms])
      arm_list = [(None, "")]
    grid = self.curve_grid()
    for a, prefix in arm_list:
      risk, surv, fine = self.curves_at(state, patients, times, grid,
                                        treatment=a)
      table[f"{prefix}risk"] = risk
      table[f"{prefix}rmst({self.tau():g})"] = metrics_lib.rmst(
          grid, fine, self.tau())
      for j, t in enumerate(times):
        table[f"{prefix}S({t:g})"] = surv[:, j]
    title = f"{pathlib.Path(input_path).name}: predicted survival by risk"
    if "time" in patients:
      title += " vs Kaplan-Meier"
    if arm_list[0][0] is not None:  # --arm all: the picture of each
      risk, fine = self.risk_and_curves(state, patients, grid)  # own arm
    return Prediction(table=table, images={"survival_curves": self.picture(
        patients, risk, fine, title)})

  def _predict_times(self, text: str | None) -> np.ndarray:
    if not text:  # round times up to the longest train follow-up
      from medgen_jax.survival_pictures import nice_ticks
      ticks = nice_ticks(self.config.survival.time_max, PREDICT_POINTS)
      return ticks[ticks > 0]
    try:
      times = np.asarray([float(t) for t in str(text).split(",")])
    except ValueError:
      raise ConfigError(f"--times {text!r}: expected comma-separated numbers "
                        "such as 365,730,1825") from None
    if not np.all(np.isfinite(times)) or np.any(times < 0):
      raise ConfigError(f"--times {text!r}: times must be finite and >= 0")
    return np.sort(times)
