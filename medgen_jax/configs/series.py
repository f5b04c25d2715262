"""Data options of physiological time series (the recurrent families' data).

    medgen train rnn --data ../shared/data/mitbih_100/100 --channels MLII \
        --resample 125 --window 250
    medgen train rgan --data vitals.csv --rate 125 --channels ECG,ABP
    medgen train rnn --data wfdb:records/ --resample 125 --segment beat
    medgen train rnn --data ../shared/data/physionet_vitals/03700181 \
        --annotation gqrsh --derive pressure

A family that trains on series adds these fields to its `data` section with
`add_series_data_options(config.data)`, checks them with
`validate_series_data_options(config.data)` and offers the command-line flags
of `SERIES_FLAGS` (`Flag(*f) for f in SERIES_FLAGS`); the readers
(`data/signals.py`, `data/series.py`) name a field by its flag in their
messages through `flag_text`, so the two stay consistent.
"""

from __future__ import annotations

import ml_collections

from medgen_jax.configs.base import check_int, check_real, data_flag_text
from medgen_jax.errors import ConfigError

SEGMENTS = ("window", "beat")
DERIVED_SERIES = ("", "heart_rate", "pressure")
NORMALIZATIONS = ("zscore", "minmax", "none")
DERIVE_RATE = 4.0  # Hz of a derived series when --resample is 0

# (flag, config field, help): a family turns them into train.task.Flag's.
SERIES_FLAGS = (
    ("--channels", "data.channels", "comma-separated channel names to keep "
     "(any case); empty = all"),
    ("--rate", "data.rate", "HZ: sampling rate of a CSV without a time "
     "column; 0 = the CSV has one"),
    ("--time-column", "data.time_column", "CSV column of times in seconds; "
     "empty = a column named time, t, seconds, time_s or timestamp"),
    ("--resample", "data.resample", "HZ: resample every record to this rate; "
     "0 = the native rate (records of different rates need it)"),
    ("--window", "data.window", "steps per example, after resampling (ignored "
     "by --segment beat)"),
    ("--stride", "data.stride", "steps between window starts; 0 = the window "
     "(no overlap)"),
    ("--segment", "data.segment", "window | beat: fixed windows, or segments "
     "centred on annotated beats labelled by beat type (their length is "
     "round((beat_before + beat_after) * rate) steps; --window is ignored)"),
    ("--beat-before", "data.beat_before", "seconds of a beat segment before "
     "the beat"),
    ("--beat-after", "data.beat_after", "seconds of a beat segment after the "
     "beat"),
    ("--annotation", "data.annotation", "EXT: the WFDB annotation file of the "
     "beats (e.g. atr, qrs); empty = atr if present"),
    ("--derive", "data.derive", "heart_rate | pressure: model a per-beat "
     "series (60/RR, or systolic and diastolic pressure) on a grid of "
     "--resample Hz (4 Hz when --resample is 0)"),
    ("--normalize", "data.normalize", "zscore | minmax | none: per channel, "
     "with the train split's statistics (sines are kept in [0, 1])"),
    ("--val-fraction", "data.val_fraction", "fraction of the time (one "
     "record) or of the records held out for validation"),
    ("--test-fraction", "data.test_fraction", "fraction of the time (one "
     "record) or of the records held out for testing"),
    ("--min-valid", "data.min_valid", "drop examples with a smaller fraction "
     "of real (unmasked) steps"),
    ("--max-windows", "data.max_windows", "keep at most N train examples, "
     "evenly spaced; 0 = all"),
    ("--covariates", "data.covariates", "CSV of static covariates per record "
     "(record name, then numeric columns); models condition on them"),
    ("--test-records", "data.test_records", "comma-separated record names "
     "held out as the test split (several records; e.g. one subject of a "
     "leave-one-out fold); val comes from the rest by --val-fraction"),
    ("--epoch-seconds", "data.epoch_seconds", "sleep data: the scoring epoch "
     "of a text hypnogram (it does not store one; default 30), or the "
     "epoch that actigraphy counts are summed into (0 = the file's)"),
    ("--nonwear-minutes", "data.nonwear_minutes", "actigraphy: runs of zero "
     "counts at least this long are non-wear and masked (0 = keep zeros)"),
    ("--diary", "data.diary", "actigraphy: a sleep diary CSV (TYPE, START, "
     "END); its NOWEAR periods are masked"),
)


def flag_text(field: str, value: str = "...") -> str:
  """How a user sets data.`field`: "--window 250", or "--set data.FIELD=..."
  when the field has no flag of its own."""
  return data_flag_text(SERIES_FLAGS, field, value)


def add_series_data_options(data: ml_collections.ConfigDict) -> None:
  """Adds the series fields to a `data` section (defaults inline)."""
  # Routes `.csv` and `.hea` files to the series readers (data/registry.py).
  data.kind = "series"
  # Channels to keep, comma-separated names matched in any case; "" = all.
  data.channels = ""
  # Hz of a CSV without a time column; 0 = the CSV must have a time column.
  data.rate = 0.0
  # CSV time column (seconds); "" = one named time/t/seconds/time_s/timestamp.
  data.time_column = ""
  # Common rate in Hz (polyphase resampling; gaps stay masked); 0 = native.
  data.resample = 0.0
  data.window = 24               # steps per example (after resampling)
  data.stride = 0                # steps between window starts; 0 = window
  # "window": fixed windows; "beat": one segment per annotated beat, from
  # beat_before s before to beat_after s after it, labelled by beat type.
  data.segment = "window"
  data.beat_before = 0.25
  data.beat_after = 0.45
  # WFDB annotation file extension ("atr", "qrs", ...); "" = atr if present.
  data.annotation = ""
  # "" | heart_rate (60/RR, bpm) | pressure (systolic and diastolic of the
  # arterial pressure channel between beats), on a grid of data.resample Hz
  # (DERIVE_RATE when data.resample is 0).
  data.derive = ""
  # zscore | minmax ([0, 1]) | none, per channel, train-split statistics.
  data.normalize = "zscore"
  # One record: contiguous time blocks (train, then val, then test); several
  # records: whole records per split, shuffled with data.seed.
  data.val_fraction = 0.1
  data.test_fraction = 0.1
  data.min_valid = 0.5           # drop examples with fewer real steps
  data.max_windows = 0           # cap on train examples (evenly spaced)
  # CSV of static covariates per record (name, then numeric columns); "" = none.
  data.covariates = ""
  # Record names (comma-separated) held out as the test split; "" = by
  # data.test_fraction.
  data.test_records = ""
  # Sleep data (data/sleep.py): seconds per epoch of a text hypnogram (0 =
  # 30 s, the AASM epoch), or of the epochs actigraphy counts are summed
  # into (0 = the file's own epoch).
  data.epoch_seconds = 0.0
  # Actigraphy: zero-count runs at least this long are non-wear (masked
  # steps, not zeros; Choi et al. 2011 use 90 min); 0 = keep every zero.
  data.nonwear_minutes = 90.0
  # Actigraphy: a sleep diary CSV whose NOWEAR periods are masked; "" = none.
  data.diary = ""
  # --data sines: TimeGAN's benchmark (Yoon et al. 2019) of data.window steps.
  data.sines_examples = 10000
  data.sines_channels = 5


def _choice(data, field: str, choices, shown=None) -> None:
  value = data[field]
  if value not in choices:
    raise ConfigError(
        f"{flag_text(field, repr(value))}: expected one of "
        f"{', '.join(shown or choices)}")


def validate_series_data_options(data) -> None:
  """Checks the series fields by meaning; ConfigError naming the flag."""
  for field in ("kind", "channels", "time_column", "segment", "annotation",
                "derive", "normalize", "test_records", "diary"):
    if not isinstance(data[field], str):
      raise ConfigError(f"{flag_text(field, repr(data[field]))}: expected a "
                        "string")
  if data.kind != "series":
    raise ConfigError(f"data.kind {data.kind!r}: the recurrent families read "
                      "series; leave it at 'series'")
  names = [c.strip() for c in data.channels.split(",")] if data.channels else []
  if any(not c for c in names):
    raise ConfigError(f"{flag_text('channels', repr(data.channels))}: empty "
                      "channel name; expected comma-separated names such as "
                      "MLII,V5")
  check_real(data.rate, "data.rate (--rate)", 0.0)
  check_real(data.resample, "data.resample (--resample)", 0.0)
  check_int(data.window, "data.window (--window)", 2)
  check_int(data.stride, "data.stride (--stride)", 0)
  _choice(data, "segment", SEGMENTS)
  before = check_real(data.beat_before, "data.beat_before (--beat-before)",
                      0.0)
  after = check_real(data.beat_after, "data.beat_after (--beat-after)", 0.0)
  if before + after <= 0:
    raise ConfigError("--beat-before + --beat-after must be > 0 seconds (the "
                      "length of a beat segment)")
  ext = data.annotation.strip().lstrip(".")
  if data.annotation and (not ext or any(c in ext for c in "/\\ ,")):
    raise ConfigError(f"{flag_text('annotation', repr(data.annotation))}: "
                      "expected a file extension such as atr or qrs")
  _choice(data, "derive", DERIVED_SERIES, ("heart_rate", "pressure",
                                           "'' (none)"))
  if data.derive and data.segment == "beat":
    raise ConfigError(f"--derive {data.derive} makes one value per beat; it "
                      "cannot be cut into beat segments: use --segment window")
  _choice(data, "normalize", NORMALIZATIONS)
  val = check_real(data.val_fraction, "data.val_fraction (--val-fraction)",
                   0.0, 1.0, hi_open=True)
  test = check_real(data.test_fraction, "data.test_fraction "
                    "(--test-fraction)", 0.0, 1.0, hi_open=True)
  if val + test >= 1.0:
    raise ConfigError(
        f"--val-fraction + --test-fraction = {val + test:g} leaves nothing to "
        "train on; their sum must be < 1")
  check_real(data.min_valid, "data.min_valid (--min-valid)", 0.0, 1.0,
             lo_open=True)
  check_int(data.max_windows, "data.max_windows (--max-windows)", 0)
  check_real(data.epoch_seconds, "data.epoch_seconds (--epoch-seconds)", 0.0)
  check_real(data.nonwear_minutes, "data.nonwear_minutes (--nonwear-minutes)",
             0.0)
  check_int(data.sines_examples, "data.sines_examples", 1)
  check_int(data.sines_channels, "data.sines_channels", 1)
