"""An expression matrix as read from a file (`Table`), checked by meaning.

Every reader (`h5ad.py`, `csv_table.py`, the registered datasets) returns a
`Table`: one matrix, samples in rows, with its gene names, sample ids and the
per-sample columns (labels, batches) a user chose. Before a Table is split,
`check_matrix_kind` checks that it holds what --matrix-kind says (counts are
non-negative integers, log-normalised values are finite and >= 0, scaled
values are finite), and `encode_column` turns a label or batch column into
int32 codes. `expression.assemble` calls both; see `expression.py` for what
happens next.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from typing import Any

import numpy as np

from medgen_jax.configs.expression import MATRIX_KINDS, flag_text
from medgen_jax.errors import ConfigError, DataError

logger = logging.getLogger("medgen_jax")

_MISSING = ("", "na", "nan", "n/a", "null", "none", "-nan")
_LOG_NORMALIZED_MAX = 50.0  # log1p of normalised counts stays far below this


def one_line(text: object) -> str:
  """`text` with its whitespace runs (newlines too) made single spaces."""
  return " ".join(str(text).split())


def _value(v: float) -> str:
  return f"{float(v):.4g}"


# ---------------------------------------------------------------------------
# The Table, and its checks by meaning.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
  """One matrix as read from a file, before it is split.

  Attributes:
    x: float32 [n, genes], samples in rows.
    gene_names: one name per column of x.
    sample_ids: one id per row of x.
    columns: key field ("label_key", "batch_key") -> the column it names,
      raw values [n] (a numpy array or a pandas Series).
    column_names: key field -> the column's name.
    source: the file, for messages.
    matrix: which matrix of the file x is ("X", "raw", "layers/counts").
    unit: what a row is, for messages ("cell", "sample").
  """

  x: np.ndarray
  gene_names: tuple[str, ...]
  sample_ids: tuple[str, ...]
  columns: dict[str, Any]
  column_names: dict[str, str]
  source: str
  matrix: str
  unit: str = "sample"

  def first(self, bad) -> tuple[float, str] | None:
    """(value, "cell 3, gene 'ACTB'") of the first entry of x where
    `bad(block)` holds, or None; rows are tested in blocks, so temporaries
    stay small."""
    found = first_bad(self.x, bad)
    if found is None:
      return None
    i, j = found
    return self.x[i, j], f"{self.unit} {i}, gene {self.gene_names[j]!r}"


_BLOCK_ROWS = 1024  # rows tested at once by the checks by meaning


def first_bad(x: np.ndarray, bad) -> tuple[int, int] | None:
  """(row, column) of the first entry of x [n, genes] where `bad` holds."""
  for start in range(0, x.shape[0], _BLOCK_ROWS):
    mask = bad(x[start:start + _BLOCK_ROWS])
    if mask.any():
      i, j = np.argwhere(mask)[0]
      return start + int(i), int(j)
  return None


def is_not_finite(x):
  return ~np.isfinite(x)


def is_negative(x):
  return x < 0


def is_fractional(x):
  return x != np.round(x)


def check_matrix_kind(table: Table, kind: str) -> None:
  """Checks that `table.x` holds what `kind` says; DataError otherwise.

  counts: finite non-negative integers; log_normalized: finite and >= 0;
  scaled: finite (no negative value at all is logged as a warning, and a
  log-normalised matrix with huge values too).
  """
  x, where = table.x, f"{table.source}: matrix {table.matrix}"
  if kind not in MATRIX_KINDS:
    raise ConfigError(f"{flag_text('matrix_kind', repr(kind))}: expected one "
                      f"of {', '.join(MATRIX_KINDS)}")
  if found := table.first(is_not_finite):
    v, at = found
    raise DataError(f"{where} holds {v} at {at}; expression values must be "
                    f"finite: fix the file or drop that {table.unit} or gene")
  if kind in ("counts", "log_normalized") and (
      found := table.first(is_negative)):
    v, at = found
    what = ("counts are non-negative integers" if kind == "counts" else
            "log-normalised values (log1p of normalised counts) are >= 0")
    raise DataError(
        f"{where} holds negative values (e.g. {_value(v)} at {at}); {what}: "
        f"it looks scaled: pass {flag_text('matrix_kind', 'scaled')} and "
        f"use a Gaussian likelihood, or choose a {kind} matrix")
  if kind == "counts" and (found := table.first(is_fractional)):
    v, at = found
    raise DataError(
        f"{where} holds non-integer values (e.g. {_value(v)} at {at}); it "
        f"is log-normalised, not counts: pass "
        f"{flag_text('matrix_kind', 'log_normalized')} and use a Gaussian "
        "likelihood, or choose a counts matrix")
  if kind == "log_normalized" and x.size and x.max() > _LOG_NORMALIZED_MAX:
    logger.warning(
        "%s holds values up to %s, large for log-normalised data (log1p of "
        "normalised counts rarely exceeds 15); if they are counts, pass %s",
        where, _value(x.max()), flag_text("matrix_kind", "counts"))
  elif kind == "scaled" and x.size and x.min() >= 0:
    logger.warning(
        "%s is said to be scaled but has no negative value (min %s); scaled "
        "(centred) data usually has some; if it holds counts or log-normalised "
        "values, pass %s or %s", where, _value(x.min()),
        flag_text("matrix_kind", "counts"),
        flag_text("matrix_kind", "log_normalized"))


def is_missing(v: Any) -> bool:
  """Whether a cell or value means "no value" (empty, NA, NaN, None)."""
  if v is None:
    return True
  if isinstance(v, str):
    return v.strip().lower() in _MISSING
  try:
    return bool(v != v)  # NaN
  except (TypeError, ValueError):  # pandas.NA refuses bool()
    return True


def as_number(v: Any) -> float | None:
  """v as a float when it is a number or a numeric string, else None."""
  if isinstance(v, bool) or isinstance(v, np.bool_):
    return None
  if isinstance(v, (numbers.Real, np.number)):
    return float(v)
  try:
    return float(str(v).strip())
  except ValueError:
    return None


def encode_column(values: Any, where: str, table: Table
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
  """Per-sample categories -> (int32 codes [n], class names).

  A pandas categorical keeps its category order (unused categories are
  dropped); numbers (or numeric strings) are ordered by value; other values
  by name. Missing values and continuous numbers are refused.

  Args:
    values: [n] values (numpy array, list or pandas Series).
    where: the column, for messages ("x.h5ad: obs column 'cell_type'").
    table: the table the column belongs to (its ids and unit).
  """
  categories = None
  if hasattr(values, "cat"):  # a pandas categorical Series
    categories = list(values.cat.categories)
    values = values.astype(object)
  arr = np.asarray(values, dtype=object)
  missing = np.array([is_missing(v) for v in arr], bool)
  if missing.any():
    i = int(np.argmax(missing))
    raise DataError(
        f"{where} has no value for {int(missing.sum())} {table.unit}s (first: "
        f"{table.unit} {i}, {table.sample_ids[i]!r}); drop those "
        f"{table.unit}s or choose another column")
  nums = [as_number(v) for v in arr]
  if categories is None and all(v is not None for v in nums):
    frac = [v for v in nums if not float(v).is_integer()]
    if frac:
      raise DataError(
          f"{where} holds continuous values (e.g. {_value(frac[0])}); a label "
          "or batch column holds categories: choose another column")
    keys = [int(v) for v in nums]
    order = sorted(set(keys))
    names = tuple(str(k) for k in order)
  else:
    keys = [str(v) for v in arr]
    present = set(keys)
    if categories is not None:
      order = [str(c) for c in categories if str(c) in present]
    else:
      order = sorted(present)
    names = tuple(order)
  index = {k: i for i, k in enumerate(order)}
  codes = np.fromiter((index[k] for k in keys), np.int32, count=len(keys))
  return codes, names
