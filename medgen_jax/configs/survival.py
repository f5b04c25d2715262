"""Survival and treatment outcome: neural risk and hazard models.

    medgen train survival                                 # embedded synthetic trial
    medgen train survival --data whas500 --data-dir ../shared/data/sksurv
    medgen train survival --data actg175 --data-dir ../shared/data/lifelines \
        --treatment arms
    medgen train survival --data patients.csv --time days --event died \
        --objective logistic_hazard --folds 5 --fold 0

Two objectives (objectives/survival.py): the Cox partial likelihood of a
neural risk score (DeepSurv; Breslow or Efron ties) and the discrete-time
logistic-hazard likelihood (Gensheimer & Narasimhan 2019), optionally with
DeepHit's ranking term. The model is an MLP on the encoded covariates (and
the treatment arm, one-hot), with a recurrent encoder for longitudinal
inputs when the data has a "series" key (models/survival.py).

The `data` fields are the survival tables' (data/survival.py); the
`survival` section is the family's. Fields derived from the data when a run
starts are typed placeholders, written into the run's config.json (the
covariate encoding, with the training split's means and fill values, is one
of them, so `medgen predict` encodes new patients exactly as in training).
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import check_int, check_real, get_base_config
from medgen_jax.errors import ConfigError

OBJECTIVES = ("cox", "logistic_hazard")
TIES = ("breslow", "efron")
ENCODERS = ("mlp", "gru", "lstm")
CUT_SCHEMES = ("quantile", "uniform")
MISSING = ("impute", "drop")


def add_survival_data_options(d: ml_collections.ConfigDict) -> None:
  """The `data` fields of survival tables (read by data/survival.py)."""
  d.kind = "survival"           # FILE_FORMATS readers "survival:.csv" etc.
  d.time_column = ""            # --time: column of follow-up times (files)
  d.event_column = ""           # --event: 1 = event observed, 0 = censored
  d.treatment_column = ""       # --treatment: arm column, kept out of x
  d.drop_columns = ()           # columns not used as covariates
  d.categorical_columns = ()    # numeric-coded columns to one-hot
  d.missing = "impute"          # impute (train medians / modes) | drop rows
  d.folds = 0                   # 0: one split; k >= 2: k-fold cross-validation
  d.fold = 0                    # the held-out fold when folds >= 2
  d.test_fraction = 0.2         # held out when folds == 0 (stratified)


def get_config() -> ml_collections.ConfigDict:
  c = get_base_config()
  c.family = "survival"
  c.data.name = "survival_synthetic"
  add_survival_data_options(c.data)

  c.optimizer.learning_rate = 1e-3
  # Defaults chosen on tables outside the benchmark's (lung, kidney_transplant,
  # veteran, actg175; 5 folds each) among four settings: on these small
  # tables longer training or a wider net overfits (README, Survival).
  c.train.steps = 300
  c.train.batch_size = 256      # the Cox risk set is the batch: keep it large
  c.train.log_every = 50
  c.train.eval_every = 300
  c.train.checkpoint_every = 300
  c.train.num_samples = 256     # sampled outcomes at each evaluation

  s = c.survival = ml_collections.ConfigDict()
  s.objective = "cox"           # cox | logistic_hazard
  s.ties = "breslow"            # cox: breslow | efron
  s.hidden = (64, 64)           # MLP widths
  s.linear_skip = True          # output = linear(inputs) + MLP(inputs)
  s.dropout = 0.3               # on the MLP's hidden units (training only)
  s.weight_decay = 1e-3         # L2 on the weights, added to each example's loss
  s.intervals = 30              # logistic_hazard: discrete-time intervals
  s.cut_scheme = "quantile"     # quantile (of train event times) | uniform
  s.rank_weight = 0.0           # logistic_hazard: weight of DeepHit's ranking term
  s.rank_sigma = 0.1            # its scale
  s.encoder = "mlp"             # mlp | gru | lstm (series inputs need a cell)
  s.rnn_hidden = 32             # recurrent encoder width
  s.eval_times = 50             # points of the held-out Brier score grid
  s.horizons = ()               # calibration horizons (data time units);
                                # () = quartiles of the train event times
  s.bootstrap = 200             # resamples for the treatment-effect spread
  # Derived from the data when a run starts (None until then):
  s.num_features = config_dict.placeholder(int)
  s.feature_names = config_dict.placeholder(tuple)
  s.encoding = config_dict.placeholder(str)      # JSON: data/survival.py
  s.num_treatments = config_dict.placeholder(int)   # 0 = no treatment column
  s.treatment_names = config_dict.placeholder(tuple)
  s.series_shape = config_dict.placeholder(tuple)   # () = tabular only
  s.cuts = config_dict.placeholder(tuple)        # logistic_hazard grid [K+1]
  s.time_max = config_dict.placeholder(float)    # longest train follow-up
  s.horizons_used = config_dict.placeholder(tuple)
  return c


def validate_survival_config(config) -> None:
  """Checks the family's section and data fields by meaning."""
  s, d = config.survival, config.data
  for field, allowed in (("objective", OBJECTIVES), ("ties", TIES),
                         ("encoder", ENCODERS), ("cut_scheme", CUT_SCHEMES)):
    if s[field] not in allowed:
      raise ConfigError(f"survival.{field} {s[field]!r}; expected one of "
                        f"{', '.join(allowed)}")
  if not s.hidden or not all(isinstance(h, int) and not isinstance(h, bool)
                             and 0 < h <= 65536 for h in s.hidden):
    raise ConfigError(f"survival.hidden (--hidden) must be positive layer "
                      f"widths such as 64,64; got {s.hidden!r}")
  if not isinstance(s.linear_skip, bool):
    raise ConfigError(f"survival.linear_skip must be true or false, got "
                      f"{s.linear_skip!r}")
  check_real(s.dropout, "survival.dropout (--dropout)", 0.0, 1.0,
             hi_open=True)
  check_real(s.weight_decay, "survival.weight_decay (--weight-decay)", 0.0)
  check_int(s.intervals, "survival.intervals (--intervals)", 2, 1001)
  check_real(s.rank_weight, "survival.rank_weight (--rank-weight)", 0.0)
  check_real(s.rank_sigma, "survival.rank_sigma", 0.0, lo_open=True)
  if s.rank_weight and s.objective != "logistic_hazard":
    raise ConfigError("--rank-weight (DeepHit's ranking term) goes with "
                      "--objective logistic_hazard")
  check_int(s.rnn_hidden, "survival.rnn_hidden", 1, 65537)
  check_int(s.eval_times, "survival.eval_times", 2, 10001)
  check_int(s.bootstrap, "survival.bootstrap", 1, 100001)
  if not isinstance(s.horizons, (tuple, list)):
    raise ConfigError(f"survival.horizons (--horizons) must be times such as "
                      f"365,1825; got {s.horizons!r}")
  for h in s.horizons:
    check_real(h, "survival.horizons (--horizons)", 0.0, lo_open=True)
  if d.missing not in MISSING:
    raise ConfigError(f"data.missing (--missing) {d.missing!r}; expected "
                      "impute or drop")
  check_int(d.folds, "data.folds (--folds)", 0)
  if d.folds == 1:
    raise ConfigError("--folds 1 leaves nothing to hold out; use 0 (one "
                      "train/test split) or k >= 2")
  check_int(d.fold, "data.fold (--fold)", 0)
  if d.folds and d.fold >= d.folds:
    raise ConfigError(f"--fold {d.fold} is out of range for --folds "
                      f"{d.folds}; choose 0..{d.folds - 1}")
  check_real(d.test_fraction, "data.test_fraction (--test-fraction)", 0.0,
             1.0, lo_open=True, hi_open=True)
