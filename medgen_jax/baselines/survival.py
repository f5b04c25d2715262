"""Survival baselines on the same encoded covariates as the neural models.

  * `cox_ph`: Cox proportional hazards (lifelines' CoxPHFitter, Efron ties),
    a small ridge penalty so one-hot columns of rare levels stay finite
    (ten times larger, up to twice, when Newton-Raphson does not converge:
    one flchain fold's unpenalised-enough fit scored C 0.32);
  * `random_survival_forest`: scikit-survival's RandomSurvivalForest
    (Ishwaran et al. 2008);
  * `kaplan_meier`: one curve for everybody (no covariates): the floor of
    the Brier score, and a concordance of 0.5.

Each takes the train arrays and test covariates and returns (risk [n],
survival [n, m] at `times`), the form metrics/survival.py scores, so a
benchmark compares the models on the same folds, grid and metric code. The
libraries are the optional `survival` extra
(`pip install 'medgen_jax[survival]'`).
"""

from __future__ import annotations

import numpy as np

from medgen_jax.errors import ConfigError
from medgen_jax.metrics.survival import kaplan_meier as km_curve
from medgen_jax.metrics.survival import step_at


def _need(module: str, package: str):
  import importlib
  try:
    return importlib.import_module(module)
  except ImportError:
    raise ConfigError(f"this baseline needs {package}; install it with "
                      "pip install 'medgen_jax[survival]'") from None


def cox_ph(x, time, event, x_test, times, penalizer: float = 0.01
           ) -> tuple[np.ndarray, np.ndarray]:
  """lifelines' Cox PH fitted on (x, time, event); risk = the linear predictor."""
  lifelines = _need("lifelines", "lifelines")
  import pandas as pd
  # A column constant in the train split (e.g. a level absent from it)
  # carries nothing, and lifelines' own scaling would divide it by zero.
  keep = np.asarray(x).std(0) > 0
  x, x_test = np.asarray(x)[:, keep], np.asarray(x_test)[:, keep]
  cols = [f"x{i}" for i in range(x.shape[1])]
  frame = pd.DataFrame(np.asarray(x, np.float64), columns=cols)
  frame["T"], frame["E"] = np.asarray(time, np.float64), np.asarray(event)
  import warnings
  for attempt in range(3):  # a fit that does not converge: 10x the ridge
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      fitter = lifelines.CoxPHFitter(penalizer=penalizer * 10**attempt)
      try:
        fitter.fit(frame, duration_col="T", event_col="E")
      except lifelines.exceptions.ConvergenceError:
        continue
    if not any(issubclass(w.category, lifelines.exceptions.ConvergenceWarning)
               for w in caught):
      break
  test = pd.DataFrame(np.asarray(x_test, np.float64), columns=cols)
  risk = np.asarray(fitter.predict_log_partial_hazard(test), np.float64)
  surv = fitter.predict_survival_function(test, times=np.asarray(times))
  return risk, np.asarray(surv, np.float64).T


def random_survival_forest(x, time, event, x_test, times, seed: int = 0,
                           trees: int = 200, min_leaf: int = 15
                           ) -> tuple[np.ndarray, np.ndarray]:
  """scikit-survival's random survival forest; risk = its predicted
  cumulative hazard summed over the event times (sksurv's `predict`)."""
  ensemble = _need("sksurv.ensemble", "scikit-survival")
  util = _need("sksurv.util", "scikit-survival")
  y = util.Surv.from_arrays(np.asarray(event).astype(bool),
                            np.asarray(time, np.float64))
  forest = ensemble.RandomSurvivalForest(
      n_estimators=trees, min_samples_leaf=min_leaf, max_features="sqrt",
      n_jobs=-1, random_state=seed)
  forest.fit(np.asarray(x, np.float64), y)
  x_test = np.asarray(x_test, np.float64)
  risk = forest.predict(x_test)
  grid = np.asarray(forest.unique_times_, np.float64)
  curves = forest.predict_survival_function(x_test, return_array=True)
  k = np.searchsorted(grid, np.asarray(times, np.float64), side="right") - 1
  surv = np.where(k >= 0, curves[:, np.maximum(k, 0)], 1.0)  # S = 1 before
  return np.asarray(risk, np.float64), surv


def kaplan_meier(time, event, n_test: int, times
                 ) -> tuple[np.ndarray, np.ndarray]:
  """The train Kaplan–Meier curve for every test patient; risk all zero."""
  kt, ks = km_curve(np.asarray(time, np.float64), np.asarray(event))
  curve = step_at(kt, ks, np.asarray(times, np.float64))
  return np.zeros(n_test), np.tile(curve, (n_test, 1))
