"""Config pieces the recurrent families (rnn, rgan) share.

Each family's section (`config.rnn`, `config.rgan`) gets the recurrent
stack's fields (`add_recurrent_fields`) and the fields a run derives from
its data (`add_derived_fields`): the channels, the window, the sampling rate
and the normalisation statistics of the train split. Those are written into
the run's config.json, so a run's samples can be turned back into mmHg and
mV by anyone who has the run folder, without the data.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import check_int
from medgen_jax.errors import ConfigError

CELL_TYPES = ("gru", "lstm")
DERIVED = ("channels", "channel_names", "units", "window", "rate",
           "unit_interval",
           "num_classes", "class_names", "norm_kind", "norm_offset",
           "norm_scale", "num_covariates", "covariate_names",
           "covariate_offset", "covariate_scale", "value_kind", "categories",
           "category_names", "count_log_mean", "time_kind", "time_start",
           "domain")


def set_training_defaults(c: ml_collections.ConfigDict) -> None:
  """The train and optimizer defaults both recurrent families start from."""
  c.data.name = "sines"
  c.train.batch_size = 64
  c.train.log_every = 100
  c.train.eval_every = 1000
  c.train.checkpoint_every = 1000
  c.train.num_samples = 256
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip = 1.0   # recurrent nets: clip the global norm


def add_recurrent_fields(s: ml_collections.ConfigDict) -> None:
  s.cell = "gru"                # gru | lstm
  s.hidden = 64                 # units per recurrent layer
  s.layers = 2                  # stacked recurrent layers
  s.condition = ""              # "" | label: condition on the beat class
  s.eval_examples = 256         # held-out windows scored at each evaluation
  s.eval_classifier_steps = 300 # post-hoc GRU steps of the discriminative score
                                # at each evaluation (0 = skip it)


def add_derived_fields(s: ml_collections.ConfigDict) -> None:
  """Fields set from the data when a run starts (None until then)."""
  s.channels = config_dict.placeholder(int)         # C
  s.channel_names = config_dict.placeholder(tuple)  # e.g. ("MLII", "V5")
  s.units = config_dict.placeholder(tuple)          # e.g. ("mV", "mV")
  s.window = config_dict.placeholder(int)           # steps per example
  s.rate = config_dict.placeholder(float)           # Hz after resampling
  s.unit_interval = config_dict.placeholder(bool)   # train values all in [0, 1]
  s.num_classes = config_dict.placeholder(int)      # classes conditioned on; 0 none
  s.class_names = config_dict.placeholder(tuple)
  s.norm_kind = config_dict.placeholder(str)        # zscore | minmax | none
  s.norm_offset = config_dict.placeholder(tuple)    # x_norm = (x - offset) / scale
  s.norm_scale = config_dict.placeholder(tuple)
  s.num_covariates = config_dict.placeholder(int)   # static covariates; 0 none
  s.covariate_names = config_dict.placeholder(tuple)
  s.covariate_offset = config_dict.placeholder(tuple)  # train mean per covariate
  s.covariate_scale = config_dict.placeholder(tuple)   # train std per covariate
  s.value_kind = config_dict.placeholder(str)       # real | categorical | counts
  s.categories = config_dict.placeholder(int)       # classes per step; 0 = not
  s.category_names = config_dict.placeholder(tuple) # e.g. ("W", "N1", ...)
  s.count_log_mean = config_dict.placeholder(float) # log(1 + train mean count)
  s.time_kind = config_dict.placeholder(str)        # "" | clock | elapsed input
  s.time_start = config_dict.placeholder(float)     # seconds: default sample start
  s.domain = config_dict.placeholder(str)           # "" | hypnogram | actigraphy


def validate_recurrent_fields(s: ml_collections.ConfigDict,
                              family: str) -> None:
  if s.cell not in CELL_TYPES:
    raise ConfigError(f"{family}.cell (--cell) {s.cell!r}; expected one of "
                      f"{', '.join(CELL_TYPES)}")
  check_int(s.hidden, f"{family}.hidden (--hidden)", 1, 8193)
  check_int(s.layers, f"{family}.layers (--layers)", 1, 17)
  if s.condition not in ("", "label"):
    raise ConfigError(f"{family}.condition (--condition) {s.condition!r}; "
                      "expected 'label' or empty")
  check_int(s.eval_examples, f"{family}.eval_examples", 2)
  check_int(s.eval_classifier_steps, f"{family}.eval_classifier_steps", 0)
