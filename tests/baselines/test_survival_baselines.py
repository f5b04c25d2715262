"""The survival baselines give curves and risks the metrics can score."""

import ml_collections
import numpy as np
import pytest

from medgen_jax.baselines import survival as baselines
from medgen_jax.configs.survival import add_survival_data_options
from medgen_jax.data.registry import load_dataset
from medgen_jax.metrics import survival as sm


@pytest.fixture(scope="module")
def trial():
  d = ml_collections.ConfigDict({"name": "survival_synthetic", "data_dir": "",
                                 "download": False, "seed": 0})
  add_survival_data_options(d)
  ds = load_dataset(d)
  train, test = ds.split("train").arrays, ds.split("test").arrays
  times = sm.evaluation_times(test["time"], test["event"], n=20)
  return train, test, times


def _check_curves(surv, n, m):
  assert surv.shape == (n, m)
  assert np.all((surv >= 0) & (surv <= 1))
  assert np.all(np.diff(surv, axis=1) <= 1e-12)


def test_cox_ph_recovers_the_arm_effect(trial):
  pytest.importorskip("lifelines")
  train, test, times = trial
  x = np.concatenate([train["x"], train["treatment"][:, None]], 1)
  xt = np.concatenate([test["x"], test["treatment"][:, None]], 1)
  risk, surv = baselines.cox_ph(x, train["time"], train["event"], xt, times)
  _check_curves(surv, len(xt), len(times))
  # Same patient, other arm: the log risk moves by the fitted arm
  # coefficient, near the true -0.5 (800 patients: se ~ 0.1).
  flipped = xt.copy()
  flipped[:, -1] = 1 - flipped[:, -1]
  risk2, _ = baselines.cox_ph(x, train["time"], train["event"], flipped,
                              times)
  log_hr = np.where(xt[:, -1] == 1, risk - risk2, risk2 - risk)
  assert np.allclose(log_hr, log_hr[0])
  assert -0.8 < log_hr[0] < -0.2
  # Linear in the covariates, it misses the biomarker's U-shaped effect:
  # about 0.65 where the neural model reaches about 0.75
  # (tests/families/test_survival.py).
  assert 0.6 < sm.harrell_c(test["time"], test["event"], risk) < 0.7


def test_random_survival_forest_ranks_patients(trial):
  pytest.importorskip("sksurv")
  train, test, times = trial
  risk, surv = baselines.random_survival_forest(
      train["x"], train["time"], train["event"], test["x"], times, trees=20)
  _check_curves(surv, len(test["x"]), len(times))
  assert sm.harrell_c(test["time"], test["event"], risk) > 0.65
  # Higher predicted risk, lower predicted survival.
  assert np.corrcoef(risk, surv[:, len(times) // 2])[0, 1] < -0.8


def test_kaplan_meier_is_the_train_curve_for_everyone(trial):
  train, test, times = trial
  risk, surv = baselines.kaplan_meier(train["time"], train["event"],
                                      len(test["x"]), times)
  assert np.all(risk == 0) and np.all(surv == surv[0])
  kt, ks = sm.kaplan_meier(train["time"], train["event"])
  k = np.searchsorted(kt, times, side="right") - 1
  np.testing.assert_allclose(surv[0], np.where(k >= 0, ks[k], 1.0))
