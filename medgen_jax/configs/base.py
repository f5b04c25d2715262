"""The base config every family shares: seed, data, train, optimizer, privacy.

A family's config (e.g. `configs/gan.py`) is this base plus one section of
its own named after the family (`config.gan`), and may change the base's
defaults. Fields that the data decide (a GAN's image channels, the number of
classes) are declared in the family section as typed placeholders (`None`
until the run resolves them), so a run's `config.json` has exactly the fields
of a fresh config and round-trips through `--config`.

`validate_base(config)` checks every base field by meaning before anything is
loaded or written; families check their own section the same way.
"""

from __future__ import annotations

import math

import ml_collections

from medgen_jax.errors import ConfigError

SEED_LIMIT = 2**32  # seeds are in [0, 2**32): JAX keys and numpy streams both take them


def get_base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every family (family-specific defaults override them)."""
  c = ml_collections.ConfigDict()
  c.family = ""                 # registry name of the model family
  c.seed = 0                    # model initialisation and step randomness

  c.data = ml_collections.ConfigDict()
  c.data.name = ""              # dataset registry name (medgen datasets)
  c.data.data_dir = ""          # "" -> the dataset's default (cache / generated)
  c.data.download = True        # may fetch public data into the cache
  c.data.seed = 0               # shuffling (and synthetic generation) seed
  c.data.train_fraction = 1.0   # < 1: a seeded, class-stratified subset of the
                                # train split (small-data studies); val/test kept
  c.data.add_samples = ""       # FILE.npz of generated examples (medgen sample
                                # --out) appended to the train split

  c.train = ml_collections.ConfigDict()
  c.train.steps = 1000
  c.train.batch_size = 64
  c.train.log_every = 50        # metrics.jsonl record every N steps
  c.train.eval_every = 500      # task outputs (sample grids, held-out scores)
  c.train.checkpoint_every = 500
  c.train.keep_checkpoints = 3
  c.train.num_samples = 64      # examples generated at each evaluation
  c.train.num_devices = 0       # data-parallel devices; 0 = all local devices
  c.train.progress = True       # tqdm progress bar

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"     # adam | rmsprop | sgd (train/optimizers.py)
  c.optimizer.learning_rate = 1e-3
  c.optimizer.b1 = 0.9          # adam: first-moment decay
  c.optimizer.b2 = 0.999        # adam: second-moment decay
  c.optimizer.eps = 1e-8        # adam, rmsprop: denominator guard
  c.optimizer.momentum = 0.0    # sgd: heavy-ball momentum (0 = plain SGD)
  c.optimizer.decay = 0.9       # rmsprop: decay of the squared-gradient average
  c.optimizer.grad_clip = 0.0   # global-norm clipping of the mean gradient, 0 = off
  # Learning-rate schedule: constant (the default), or a linear / cosine decay
  # from the learning rate to final_lr_fraction of it, between steps
  # decay_begin and decay_end (0 = the run's train.steps; a run resumed with
  # more --steps then stretches the decay, so set it to keep it fixed).
  c.optimizer.schedule = "constant"  # constant | linear | cosine
  c.optimizer.decay_begin = 0
  c.optimizer.decay_end = 0
  c.optimizer.final_lr_fraction = 0.0

  # Differentially private training (DP-SGD) will plug in here through the
  # gradient function of train/update.py; until it lands, enabling it is
  # refused rather than silently ignored.
  c.privacy = ml_collections.ConfigDict()
  c.privacy.enabled = False
  c.privacy.l2_clip = 1.0       # per-example gradient norm bound
  c.privacy.noise_multiplier = 1.0
  c.privacy.target_delta = 1e-5
  return c


def check_int(value, path: str, lo: int | None = None,
              hi: int | None = None) -> int:
  """`value` is an integer (not a bool) in [lo, hi); else ConfigError."""
  if isinstance(value, bool) or not isinstance(value, int):
    raise ConfigError(f"{path} must be an integer, got {value!r}")
  if lo is not None and value < lo:
    raise ConfigError(f"{path} must be >= {lo}, got {value}")
  if hi is not None and value >= hi:
    raise ConfigError(f"{path} must be < {hi}, got {value}")
  return value


def check_real(value, path: str, lo: float = -math.inf, hi: float = math.inf,
               *, lo_open: bool = False, hi_open: bool = False) -> float:
  """`value` is a finite number in the interval; else ConfigError."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ConfigError(f"{path} must be a number, got {value!r}")
  v = float(value)
  ok = (math.isfinite(v) and (v > lo if lo_open else v >= lo)
        and (v < hi if hi_open else v <= hi))
  if not ok:
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    raise ConfigError(f"{path} must be a finite number in {left}{lo:g}, "
                      f"{hi:g}{right}, got {value!r}")
  return v


SCHEDULES = ("constant", "linear", "cosine")


def check_schedule(o, train_steps: int) -> tuple[int, int]:
  """Checks the optimizer section's learning-rate schedule fields by
  meaning; returns the decay's (begin, end) steps, end resolved from
  train_steps when `decay_end` is 0."""
  if o.schedule not in SCHEDULES:
    raise ConfigError(f"optimizer.schedule must be one of {', '.join(SCHEDULES)}"
                      f", got {o.schedule!r} (--lr-schedule)")
  begin = check_int(o.decay_begin, "optimizer.decay_begin", 0)
  end = check_int(o.decay_end, "optimizer.decay_end", 0) or train_steps
  check_real(o.final_lr_fraction, "optimizer.final_lr_fraction", 0.0, 1.0)
  if o.schedule != "constant" and end <= begin:
    raise ConfigError(
        f"optimizer.decay_begin ({begin}) must be before the decay's end "
        f"({end}, optimizer.decay_end or else train.steps); pass "
        "--lr-decay-begin below --steps")
  return begin, end


def validate_base(config) -> None:
  """Checks the base fields by meaning; raises ConfigError naming the field."""
  if not isinstance(config.family, str) or not config.family:
    raise ConfigError("config.family is empty; name a model family, e.g. "
                      "`medgen train gan`")
  check_int(config.seed, "seed", 0, SEED_LIMIT)
  d = config.data
  if not isinstance(d.name, str) or not d.name.strip():
    raise ConfigError("data.name is empty; pass --data NAME "
                      "(`medgen datasets` lists them)")
  check_int(d.seed, "data.seed", 0, SEED_LIMIT)
  t = config.train
  for key in ("steps", "batch_size", "log_every", "eval_every",
              "checkpoint_every", "keep_checkpoints", "num_samples"):
    check_int(t[key], f"train.{key}", 1)
  check_int(t.num_devices, "train.num_devices", 0)
  o = config.optimizer
  check_real(o.learning_rate, "optimizer.learning_rate", 0.0, lo_open=True)
  check_real(o.b1, "optimizer.b1", 0.0, 1.0, hi_open=True)
  check_real(o.b2, "optimizer.b2", 0.0, 1.0, hi_open=True)
  check_real(o.eps, "optimizer.eps", 0.0, lo_open=True)
  check_real(o.momentum, "optimizer.momentum", 0.0, 1.0, hi_open=True)
  check_real(o.decay, "optimizer.decay", 0.0, 1.0, hi_open=True)
  check_real(o.grad_clip, "optimizer.grad_clip", 0.0)
  check_schedule(o, t.steps)
  p = config.privacy
  check_real(p.l2_clip, "privacy.l2_clip", 0.0, lo_open=True)
  check_real(p.noise_multiplier, "privacy.noise_multiplier", 0.0)
  check_real(p.target_delta, "privacy.target_delta", 0.0, 1.0, lo_open=True,
             hi_open=True)
  if p.enabled:
    raise ConfigError(
        "privacy.enabled=True: differentially private training (DP-SGD) is "
        "not implemented yet; the privacy section is reserved for it. Train "
        "without --set privacy.enabled=true")


def data_flag_text(flags, field: str, value: str = "...") -> str:
  """How a user sets data.`field`, for messages: "--window 250" when one of
  `flags` ((flag, "data.field", help) triples) sets it, else
  "--set data.FIELD=..."."""
  for name, path, _ in flags:
    if path == f"data.{field}":
      return f"{name} {value}"
  return f"--set data.{field}={value}"
