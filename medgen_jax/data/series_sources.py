"""Where series datasets come from: files, folders of records, sines.

    medgen train rnn --data ../shared/data/mitbih_100/100      # WFDB record
    medgen train rnn --data vitals.csv --rate 125              # CSV channels
    medgen train rnn --data wfdb:records/ --resample 125       # every record
    medgen train rnn --data wfdb:a/100,b/101                   # listed records
    medgen train rnn --data sines                              # TimeGAN sines

Registered for families whose data section sets `data.kind = "series"`
(configs/series.py): `series:.hea` (one WFDB record; `--data DIR/100`
without a suffix reaches it through the registry's companion rule),
`series:.csv`, the prefix `wfdb:` (several records, split by record) and the
generated dataset `sines`.
"""

from __future__ import annotations

import pathlib

import numpy as np

from medgen_jax.data import series
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.registry import (DATASETS, FILE_FORMATS, PREFIXES,
                                      format_bytes, memory_limit_bytes)
from medgen_jax.data.signals import read_signal_csv, read_wfdb, record_base
from medgen_jax.errors import DataError

SINES_FREQ = 0.1   # freq ~ U(0, 0.1) per example and channel (Yoon et al.)
SINES_PHASE = 0.1  # phase ~ U(0, 0.1)


@FILE_FORMATS.register("series:.hea")
def load_wfdb_file(path: pathlib.Path, data_config) -> Dataset:
  """`--data DIR/100.hea` (or DIR/100): one WFDB record, time-block splits."""
  opts = series.read_options(data_config, path.name)
  rec = read_wfdb(path, opts.annotation)
  return series.series_dataset([rec], data_config, rec.name, str(path))


@FILE_FORMATS.register("series:.csv")
def load_csv_file(path: pathlib.Path, data_config) -> Dataset:
  """`--data FILE.csv`: one CSV of channels, time-block splits."""
  opts = series.read_options(data_config, path.name)
  rec = read_signal_csv(path, opts.rate, opts.time_column)
  return series.series_dataset([rec], data_config, rec.name, str(path))


def _record_paths(rest: str) -> list[pathlib.Path]:
  """The records of `wfdb:REST`: a folder's (every .hea in it that is not a
  segment of a multi-segment record there) or comma-separated paths."""
  parts = [p.strip() for p in rest.split(",") if p.strip()]
  if not parts:
    raise DataError("wfdb: names no record; pass --data wfdb:FOLDER (every "
                    "record in it) or --data wfdb:REC1,REC2")
  if len(parts) == 1 and pathlib.Path(parts[0]).expanduser().is_dir():
    folder = pathlib.Path(parts[0]).expanduser()
    headers = sorted(folder.glob("*.hea"))
    if not headers:
      raise DataError(f"{folder}: no WFDB header (.hea) in this folder; "
                      "--data wfdb:FOLDER reads every record in it")
    return _drop_segments([record_base(h) for h in headers])
  return [record_base(pathlib.Path(p).expanduser()) for p in parts]


def _drop_segments(bases: list[pathlib.Path]) -> list[pathlib.Path]:
  """`bases` less the segments (and layout headers) of the multi-segment
  records among them, which are read through their master record."""
  segments: set[str] = set()
  for base in bases:
    with open(base.with_name(base.name + ".hea"), errors="replace") as f:
      first = next((ln for ln in f if ln.strip() and
                    not ln.lstrip().startswith("#")), "")
      fields = first.split()
      if fields and "/" in fields[0]:  # "NAME/SEGMENTS ...": a master header
        segments.update(ln.split()[0] for ln in f
                        if ln.strip() and not ln.lstrip().startswith("#"))
  return [b for b in bases if b.name not in segments]


@PREFIXES.register("wfdb")
def load_wfdb_records(rest: str, data_config) -> Dataset:
  """`--data wfdb:FOLDER` or `wfdb:REC1,REC2`: record-level splits."""
  name = f"wfdb:{rest}"
  opts = series.read_options(data_config, name)
  recs = [read_wfdb(p, opts.annotation) for p in _record_paths(rest)]
  names = [r.name for r in recs]
  return series.series_dataset(recs, data_config,
                               names[0] if len(recs) == 1 else name, name)


def generate_sines(n: int, channels: int, length: int,
                   seed: int) -> np.ndarray:
  """TimeGAN's sines (Yoon et al. 2019): x_t = sin(freq * t + phase) per
  example and channel, freq ~ U(0, 0.1), phase ~ U(0, 0.1), t = 0..length-1,
  scaled to [0, 1] by (x + 1) / 2. Returns float32 [n, length, channels]."""
  rng = np.random.default_rng(seed)
  freq = rng.uniform(0.0, SINES_FREQ, (n, 1, channels))
  phase = rng.uniform(0.0, SINES_PHASE, (n, 1, channels))
  t = np.arange(length, dtype=np.float64)[None, :, None]
  return ((np.sin(freq * t + phase) + 1.0) / 2.0).astype(np.float32)


@DATASETS.register("sines")
def load_sines(data_config) -> Dataset:
  """--data sines: data.sines_examples examples of data.window steps and
  data.sines_channels channels, seeded by data.seed, split train / val /
  test by data.val_fraction and data.test_fraction (80/10/10 by default).

  The values are already in [0, 1], the scale TimeGAN reports on, so they
  are kept as they are whatever data.normalize says: the normalisation is
  recorded as kind "none" (offset 0, scale 1).
  """
  opts = series.read_options(data_config, "sines")
  n, channels = int(data_config.sines_examples), int(
      data_config.sines_channels)
  need = n * opts.window * channels * 5
  limit = memory_limit_bytes()
  if limit is not None and need > limit:
    raise DataError(f"sines: {n} examples take about {format_bytes(need)}, "
                    f"more than the {format_bytes(limit)} allowed; lower "
                    "--set data.sines_examples")
  x = generate_sines(n, channels, opts.window, opts.seed)
  n_val = int(round(opts.val_fraction * n))
  n_test = int(round(opts.test_fraction * n))
  n_train = n - n_val - n_test
  bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, n)}
  splits = {s: Split({"x": x[a:b], "mask": np.ones((b - a, opts.window),
                                                   bool)})
            for s, (a, b) in bounds.items() if b > a}
  metadata = {
      "channels": tuple(f"sine{i + 1}" for i in range(channels)),
      "units": ("",) * channels, "rate": 1.0,
      "normalization": {"kind": "none", "offset": [0.0] * channels,
                        "scale": [1.0] * channels},
      "window": opts.window, "stride": opts.window, "records": ("sines",),
      "split_rule": (f"independent generated examples: the first {n_train} "
                     f"train, the next {n_val} val, the last {n_test} test"),
      "segment": "window", "derive": ""}
  return Dataset(name="sines", splits=splits,
                 source=f"generated sines (seed {opts.seed})",
                 modality="series", metadata=metadata)
