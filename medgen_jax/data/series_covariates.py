"""Static covariates of records (age, sex, diagnosis ...) for series data.

    medgen train rnn --data wfdb:records/ --covariates patients.csv

`patients.csv` has the record name in its first column and one numeric
column per covariate (header: names). Every window or beat segment of a
record carries that record's row; the values are standardised with the
train split's mean and standard deviation, which the dataset's metadata
(and so the run's config) keeps. A record missing from the file, a
non-numeric or empty cell, or a file without covariate columns is refused
in one line naming the file and the line.
"""

from __future__ import annotations

import math
import pathlib
from typing import Sequence

import numpy as np

from medgen_jax.data.csv_rows import read_csv_rows
from medgen_jax.errors import DataError


def read_record_covariates(path: str | pathlib.Path,
                           records: Sequence[str]) -> tuple[tuple[str, ...],
                                                            np.ndarray]:
  """(covariate names, float64 values [len(records), S]) of `records`."""
  path = pathlib.Path(path).expanduser()
  header, rows, lines = read_csv_rows(
      path, too_big_hint="keep one row per record",
      expected="one row per record: its name, then numeric covariates")
  names = tuple(header[1:])
  if not names:
    raise DataError(f"{path} has no covariate columns; expected the record "
                    "name in the first column, then numeric covariates")
  table = {}
  for row, line in zip(rows, lines):
    values = []
    for name, cell in zip(names, row[1:]):
      try:
        v = float(cell)
      except ValueError:
        v = math.nan
      if not math.isfinite(v):
        raise DataError(f"{path}: line {line}, column {name!r} holds "
                        f"{cell!r}; expected a finite number (encode "
                        "categories as 0/1 columns)")
      values.append(v)
    table[row[0].strip()] = values
  missing = [r for r in records if r not in table]
  if missing:
    raise DataError(f"{path} has no row for record(s) {', '.join(missing)} "
                    f"(its first column names {len(table)} records); add them")
  return names, np.asarray([table[r] for r in records], np.float64)


def standardise(values: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray],
                                                        dict[str, list]]:
  """Per split [n, S] -> standardised float32 with the train split's mean
  and standard deviation (1 for a constant covariate), and those stats."""
  train = values["train"]
  offset = train.mean(0)
  scale = train.std(0)
  scale = np.where(scale > 0, scale, 1.0)
  out = {s: ((v - offset) / scale).astype(np.float32)
         for s, v in values.items()}
  return out, {"offset": offset.tolist(), "scale": scale.tolist()}
