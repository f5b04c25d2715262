"""Reading expression tables from .csv files, and `--data X.csv`.

    medgen train vae --data arrays.csv --matrix-kind scaled \
        --set data.csv_labels=labels.csv --label-key diagnosis

A .csv is read with the standard library, either genes x samples (the usual
microarray export; data.csv_orientation) or samples x genes. The columns
before the first numeric one are identifiers: the first of them whose values
are unique names the rows (else the last one); a numeric identifier column
(e.g. Entrez ids) must be skipped. Every other column must be numeric unless
data.csv_ignore_columns skips it (unnamed empty columns are skipped); an
empty or NaN cell is an error naming its line and column.

Labels come from a separate CSV (data.csv_labels: sample ids in its first
column; `attach_annotations`), or, for samples x genes, from a column of the
file itself named by data.label_key. The reader holds the whole text in
memory: it is meant for microarray-size tables; convert large single-cell
data to .h5ad. The Table read here goes through `expression.assemble` like
every other expression source.
"""

from __future__ import annotations

import fnmatch
import logging
import pathlib
from typing import Mapping, Sequence

import numpy as np

from medgen_jax.configs.expression import flag_text
from medgen_jax.data.base import Dataset
from medgen_jax.data.csv_rows import read_csv_rows
from medgen_jax.data.expression import (KEY_FIELDS, assemble, need_kind,
                                        read_options)
from medgen_jax.data.expression_table import Table, as_number, is_missing
from medgen_jax.data.registry import FILE_FORMATS
from medgen_jax.errors import ConfigError, DataError

logger = logging.getLogger("medgen_jax")

def _read_rows(path: pathlib.Path) -> tuple[list[str], list[list[str]],
                                             list[int]]:
  return read_csv_rows(
      path, too_big_hint="convert it to .h5ad (anndata) or use a machine "
      "with more memory", expected="one line per gene or sample")


def _parse_column(cells: Sequence[str]) -> np.ndarray | None:
  """float64 values of one column (NaN where missing), or None when a cell is
  not a number or every cell is missing."""
  try:  # the fast path: every cell a number
    return np.fromiter(map(float, cells), np.float64, count=len(cells))
  except ValueError:
    pass
  values, seen = np.full(len(cells), np.nan), False
  for i, cell in enumerate(cells):
    if not is_missing(cell):
      number = as_number(cell)
      if number is None:
        return None
      values[i], seen = number, True
  return values if seen else None


def _matches(name: str, patterns: Sequence[str]) -> bool:
  return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _non_numeric(path, header: Sequence[str], cols: Sequence[Sequence[str]],
                 lines: Sequence[int], bad: Sequence[int]) -> DataError:
  """The error for non-numeric value columns `bad`, naming them."""
  names: dict[str, int] = {}
  for j in bad:
    names[header[j]] = names.get(header[j], 0) + 1
  listed = ", ".join(f"{n!r}" + (f" ({c} columns)" if c > 1 else "")
                     for n, c in list(names.items())[:5])
  more = f" and {len(names) - 5} more" if len(names) > 5 else ""
  example = "all empty"
  for i, cell in enumerate(cols[bad[0]]):
    if as_number(cell) is None and not is_missing(cell):
      example = f"e.g. {cell.strip()!r} at line {lines[i]}"
      break
  return DataError(
      f"{path}: column(s) {listed}{more} are not numeric ({example}); skip "
      f"them with --set data.csv_ignore_columns='{','.join(list(names)[:5])}'"
      " or fix the file")


def read_csv_table(path, orientation: str, ignore: Sequence[str] = (),
                   keys: Mapping[str, str] | None = None) -> Table:
  """Reads a CSV of expression values (see the module docstring).

  Args:
    path: the file.
    orientation: "genes_by_samples" or "samples_by_genes".
    ignore: column names (shell patterns) to skip.
    keys: key field -> column name, read as per-sample columns of the file
      (samples_by_genes only; absent ones are left to a label file).

  Returns:
    The Table (matrix "X"); `columns` holds the keys found in the file.
  """
  path = pathlib.Path(path)
  header, rows, lines = _read_rows(path)
  by_samples = orientation == "samples_by_genes"
  wanted = {f: k for f, k in (keys or {}).items() if k and by_samples}
  n_rows, cols = len(rows), list(zip(*rows))
  del rows  # the columns hold the same strings
  parsed = [_parse_column(c) for c in cols]
  numeric = [v is not None for v in parsed]
  # Skipped: columns the user names, and unnamed empty ones (a trailing comma).
  skip = [_matches(h, ignore) or (not h and all(map(is_missing, cols[j])))
          for j, h in enumerate(header)]
  notes = {j: f for j, h in enumerate(header) for f, k in wanted.items()
           if h == k}
  first = next((j for j in range(len(header)) if numeric[j] and not skip[j]
                and j not in notes), None)
  if first is None:
    raise DataError(f"{path} has no numeric column that is not skipped; "
                    "expected expression values")
  id_cols = [j for j in range(first) if not skip[j] and j not in notes]
  data_cols = [j for j in range(first, len(header))
               if not skip[j] and j not in notes]
  bad = [j for j in data_cols if not numeric[j]]
  if bad:
    raise _non_numeric(path, header, cols, lines, bad)
  ids_j = next((j for j in id_cols if len(set(cols[j])) == n_rows),
               id_cols[-1] if id_cols else None)
  row_ids = (tuple(c.strip() for c in cols[ids_j]) if ids_j is not None else
             None)
  values = np.stack([parsed[j] for j in data_cols], axis=1)  # [rows, cols]
  finite = np.isfinite(values)
  if not finite.all():
    i, c = (int(k) for k in np.argwhere(~finite)[0])
    j = data_cols[c]
    name = f" ({row_ids[i]!r})" if row_ids is not None else ""
    cell = cols[j][i].strip()
    what = (f"holds {cell!r}" if not is_missing(cell) else
            f"has no value ({cell!r})" if cell else "has no value")
    raise DataError(
        f"{path}: line {lines[i]}{name}, column {header[j]!r} {what}; every "
        "value must be a finite number: fill it in, or drop that row or "
        "column")
  col_names = tuple(header[j] or f"column_{j + 1}" for j in data_cols)
  if by_samples:
    x = values
    samples = row_ids or tuple(f"sample_{i}" for i in range(n_rows))
    genes = col_names
  else:
    x = values.T
    genes = row_ids or tuple(f"gene_{i}" for i in range(n_rows))
    samples = col_names
  if len(set(genes)) != len(genes):
    logger.warning("%s: some gene names repeat (%d names for %d genes)",
                   path, len(set(genes)), len(genes))
  columns = {f: np.asarray(cols[j], dtype=object) for j, f in notes.items()}
  return Table(x=x.astype(np.float32), gene_names=tuple(genes),
               sample_ids=tuple(samples), columns=columns,
               column_names={f: header[j] for j, f in notes.items()},
               source=str(path), matrix="X", unit="sample")


def attach_annotations(table: Table, path, keys: Mapping[str, str]) -> None:
  """Adds per-sample columns of an annotation CSV to `table`, matched by id.

  Args:
    table: the Table to add to (in place).
    path: the CSV; its first column holds the sample ids (the ids of
      `table`).
    keys: key field -> the column name to add ("" = none).
  """
  path = pathlib.Path(path)
  header, rows, lines = _read_rows(path)
  seen: dict[str, int] = {}
  for row, line in zip(rows, lines):
    sid = row[0].strip()
    if sid in seen:
      raise DataError(f"{path}: sample id {sid!r} is on lines {seen[sid]} and "
                      f"{line}; each sample needs one line")
    seen[sid] = line
  if len(set(table.sample_ids)) != len(table.sample_ids):
    raise DataError(f"{table.source} has repeated sample ids; labels from "
                    f"{path} are matched by id, so the ids must be unique")
  index = {row[0].strip(): i for i, row in enumerate(rows)}
  absent = [s for s in table.sample_ids if s not in index]
  if absent:
    raise DataError(
        f"{path} has no line for {len(absent)} sample(s) of {table.source} "
        f"(e.g. {', '.join(map(repr, absent[:3]))}); its first column "
        f"({header[0]!r}) must hold the sample ids")
  order = [index[s] for s in table.sample_ids]
  for field, key in keys.items():
    if not key or field in table.columns:
      continue
    if key not in header[1:]:
      raise DataError(
          f"{path} has no column {key!r} ({flag_text(field, key)}); its "
          f"columns are: {', '.join(map(repr, header[1:])) or 'none'}")
    j = header.index(key)
    table.columns[field] = np.asarray([rows[i][j].strip() for i in order],
                                      dtype=object)
    table.column_names[field] = key


@FILE_FORMATS.register(".csv")
def load_csv_file(path: pathlib.Path, data_config) -> Dataset:
  """`--data PATH.csv`: --matrix-kind must be given."""
  opts = read_options(data_config, path.name)
  if opts.matrix not in ("", "X"):
    raise ConfigError(f"{flag_text('matrix', opts.matrix)}: a .csv holds one "
                      "matrix; leave --matrix empty (or X)")
  if not opts.matrix_kind:
    raise need_kind(str(path), "X")
  keys = {f: getattr(opts, f) for f in KEY_FIELDS if getattr(opts, f)}
  table = read_csv_table(path, opts.csv_orientation, opts.csv_ignore_columns,
                         keys)
  rest = {f: k for f, k in keys.items() if f not in table.columns}
  if rest and not opts.csv_labels:
    f, k = next(iter(rest.items()))
    where = ("is not a column of " + str(path) if opts.csv_orientation ==
             "samples_by_genes" else f"needs a label file: {path} is genes x "
             "samples")
    raise ConfigError(
        f"{flag_text(f, k)} {where}; give a CSV of sample id -> {k} with "
        "--set data.csv_labels=PATH")
  if opts.csv_labels:
    attach_annotations(table, opts.csv_labels, rest)
  return assemble(path.name, table, opts, opts.matrix_kind)
