"""Survival tables: reading .csv/.tsv/.arff cells and encoding covariates.

`read_table` reads a file into a `RawTable` of text cells (a CSV through the
shared `read_csv_rows`; a TSV the same way with tabs; an ARFF file by its
declarations, whose nominal levels give the level order). Missing cells are
empty, "NA", "NaN", "null" ... or ARFF's "?".

The covariate encoding is a JSON-serialisable dict (`survival.py` builds it
from the train split; a run stores it in its config) that says how to turn
any rows with the same columns into the model's float features:

    {"columns": [{"name": "age", "kind": "numeric", "fill": 61.0},
                 {"name": "tgrade", "kind": "categorical",
                  "levels": ["I", "II", "III"], "fill": "II"}, ...],
     "feature_names": ["age", "tgrade=II", "tgrade=III", ...],
     "mean": [...], "std": [...],            # per output feature (train)
     "time_column": ..., "event_column": ..., "treatment_column": ...,
     "treatment_levels": [...], "treatment_names": [...],
     "drop_columns": [...], "missing": "impute" | "drop"}

A numeric column is one feature; a categorical column of L levels is L - 1
one-hot features (the first level is the baseline, so a two-level column is
one 0/1 feature); every feature is then standardised with the stored
mean/std. Missing covariate cells take the stored fill value (the train
median or mode). `encode_rows` applies an encoding to new rows (`medgen
predict --input patients.csv`), and the dataset builder applies it to the
file it was fitted on, so both give identical features.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from medgen_jax.data.csv_rows import check_size, read_csv_rows
from medgen_jax.data.expression_table import is_missing, one_line
from medgen_jax.errors import DataError

SUFFIXES = (".csv", ".tsv", ".arff")
# Event codings read besides 0/1 (lower case cell -> indicator).
EVENT_CODES = {"0": 0, "1": 1, "false": 0, "true": 1, "censored": 0,
               "alive": 0, "dead": 1, "died": 1, "no": 0, "yes": 1}
_TOO_BIG = "split the file or use a machine with more memory"
_ROWS = "one line per patient"


@dataclasses.dataclass(frozen=True)
class RawTable:
  """A table's text cells by column, as read from a file.

  Attributes:
    source: the file (for messages).
    header: column names in file order (an unnamed column is "").
    columns: name -> stripped text cells, one per row.
    lines: the file line of each row (for messages).
    kinds: ARFF declarations: name -> "numeric", "nominal" or "string".
    levels: ARFF nominal name -> its declared levels (canonical text).
  """

  source: str
  header: list[str]
  columns: dict[str, list[str]]
  lines: list[int]
  kinds: dict[str, str] = dataclasses.field(default_factory=dict)
  levels: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

  def __len__(self) -> int:
    return len(self.lines)

  def __iter__(self):
    """Unpacks as `header, rows = read_table(path)` (for encode_rows)."""
    return iter((self.header, self.rows()))

  def rows(self) -> list[list[str]]:
    """The cells row by row, in header order."""
    return [list(r) for r in zip(*(self.columns[h] for h in self.header))]

  def take(self, rows: np.ndarray) -> "RawTable":
    """The table restricted to `rows` (int indices)."""
    cols = {h: [c[i] for i in rows] for h, c in self.columns.items()}
    return dataclasses.replace(self, columns=cols,
                               lines=[self.lines[i] for i in rows])


def missing(cell: str) -> bool:
  """Whether a text cell means "no value" (empty, NA, NaN, ARFF's ?)."""
  return is_missing(cell) or cell.strip() == "?"


def _float(cell: str) -> float | None:
  try:
    return float(cell)
  except ValueError:
    return None


def canonical(cell: str) -> str:
  """A categorical level's text: numbers written one way ("1.0" -> "1")."""
  cell = cell.strip()
  x = _float(cell)
  if x is None or not math.isfinite(x):
    return cell
  return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def _listed(names: Sequence[str]) -> str:
  return ", ".join(repr(n) for n in names) or "none"


# ---------------------------------------------------------------------------
# Reading files.
# ---------------------------------------------------------------------------


def _check_size(path: pathlib.Path) -> None:
  check_size(path, _TOO_BIG)


def _split_arff(text: str, where: str) -> list[str]:
  """Comma-separated ARFF values; '...' or "..." quote (backslash escapes)."""
  if "'" not in text and '"' not in text:
    return [v.strip() for v in text.split(",")]
  out, cell, quote, i = [], [], None, 0
  while i < len(text):
    ch = text[i]
    if quote:
      if ch == "\\" and i + 1 < len(text):
        cell.append(text[i + 1])
        i += 1
      elif ch == quote:
        quote = None
      else:
        cell.append(ch)
    elif ch in "'\"" and not "".join(cell).strip():
      quote, cell = ch, []
    elif ch == ",":
      out.append("".join(cell).strip())
      cell = []
    else:
      cell.append(ch)
    i += 1
  if quote:
    raise DataError(f"{where} has an unclosed {quote} quote; close it")
  out.append("".join(cell).strip())
  return out


def _arff_attribute(rest: str, where: str) -> tuple[str, str]:
  """(name, type text) of the text after `@attribute`."""
  rest = rest.strip()
  if rest[:1] in ("'", '"'):
    end = rest.find(rest[0], 1)
    if end < 0:
      raise DataError(f"{where}: the attribute name's quote is not closed")
    return rest[1:end], rest[end + 1:].strip()
  parts = rest.split(None, 1)
  return parts[0], parts[1].strip() if len(parts) > 1 else ""


def _read_arff(path: pathlib.Path) -> RawTable:
  _check_size(path)
  try:
    text = path.read_text(encoding="utf-8-sig")
  except (OSError, UnicodeDecodeError) as e:
    raise DataError(f"{path} is not a readable ARFF file ({one_line(e)}); "
                    "expected UTF-8 text") from None
  header, kinds, levels, rows, lines, in_data = [], {}, {}, [], [], False
  for number, raw in enumerate(text.splitlines(), start=1):
    line = raw.strip()
    if not line or line.startswith("%"):
      continue
    where = f"{path}: line {number}"
    low = line.lower()
    if not in_data:
      if low.startswith("@attribute"):
        name, kind = _arff_attribute(line[len("@attribute"):], where)
        header.append(name)
        if kind.startswith("{"):
          if not kind.endswith("}"):
            raise DataError(f"{where}: nominal levels lack their closing }}")
          kinds[name] = "nominal"
          levels[name] = tuple(canonical(v) for v in _split_arff(kind[1:-1],
                                                                where))
        elif kind.lower() in ("numeric", "real", "integer"):
          kinds[name] = "numeric"
        elif kind.lower().split()[0:1] in (["string"], ["date"]):
          kinds[name] = "string"
        else:
          raise DataError(f"{where}: attribute {name!r} has type {kind!r}; "
                          "survival tables read numeric, nominal, string or "
                          "date attributes")
      elif low.startswith("@data"):
        in_data = True
      elif not low.startswith("@relation"):
        raise DataError(f"{where} is {line[:40]!r}; expected @relation, "
                        "@attribute or @data in an ARFF header")
      continue
    if line.startswith("{"):
      raise DataError(f"{where} is a sparse ARFF row; write the file in "
                      "dense form (one value per attribute)")
    row = _split_arff(line, where)
    if len(row) != len(header):
      raise DataError(f"{where} has {len(row)} values but the file declares "
                      f"{len(header)} attributes; every row needs one value "
                      "per attribute")
    rows.append(row)
    lines.append(number)
  if not header or not rows:
    lacks = "no @attribute" if not header else "no @data"
    raise DataError(f"{path} has {lacks} lines; expected an ARFF header and "
                    f"{_ROWS}")
  return _table(path, header, rows, lines, kinds, levels)


def _table(path, header, rows, lines, kinds=None, levels=None) -> RawTable:
  seen = set()
  for h in header:
    if h in seen:
      raise DataError(f"{path}: column {h!r} appears twice in the header; "
                      "give every column its own name")
    seen.add(h)
  columns = {h: [row[j].strip() for row in rows] for j, h in enumerate(header)}
  return RawTable(str(path), list(header), columns, list(lines), kinds or {},
                  levels or {})


def read_table(path) -> RawTable:
  """Reads a .csv, .tsv or .arff survival table into text cells.

  Args:
    path: the file.

  Returns:
    A RawTable: `header` (column names) and `columns` (name -> cells); it
    unpacks as `header, rows` for encode_rows.
  """
  path = pathlib.Path(path)
  suffix = path.suffix.lower()
  if suffix == ".arff":
    return _read_arff(path)
  if suffix == ".tsv":
    header, rows, lines = read_csv_rows(path, too_big_hint=_TOO_BIG,
                                        expected=_ROWS, delimiter="\t")
  elif suffix == ".csv":
    header, rows, lines = read_csv_rows(path, too_big_hint=_TOO_BIG,
                                        expected=_ROWS)
  else:
    raise DataError(f"{path}: unknown table type {suffix or '(no suffix)'!r};"
                    f" survival tables are {', '.join(SUFFIXES)} files")
  return _table(path, header, rows, lines)


# ---------------------------------------------------------------------------
# Parsing columns.
# ---------------------------------------------------------------------------


def parse_numbers(cells: Sequence[str], name: str, source: str,
                  lines: Sequence[int], what: str = "numeric column",
                  fix: str = "fix the cell") -> np.ndarray:
  """float64 [n] of a numeric column, NaN where a cell is missing."""
  out = np.full(len(cells), np.nan)
  for i, cell in enumerate(cells):
    if missing(cell):
      continue
    x = _float(cell)
    if x is None or not math.isfinite(x):
      raise DataError(f"{source}: {what} {name!r} holds {cell!r} at line "
                      f"{lines[i]}; expected a finite number; {fix}")
    out[i] = x
  return out


def parse_time(cells, name, source, lines) -> np.ndarray:
  """float64 [n] follow-up times >= 0, NaN where missing."""
  t = parse_numbers(cells, name, source, lines, "time column",
                    "fix the cell or choose the time column with --time")
  bad = np.flatnonzero(t < 0)
  if bad.size:
    i = int(bad[0])
    raise DataError(f"{source}: time column {name!r} has negative time "
                    f"{t[i]:g} at line {lines[i]}; follow-up times must be "
                    ">= 0; fix or remove that row")
  return t


def parse_event(cells, name, source, lines) -> np.ndarray:
  """int64 [n] event indicators (1 = event, 0 = censored), -1 where missing."""
  out = np.full(len(cells), -1, np.int64)
  for i, cell in enumerate(cells):
    if missing(cell):
      continue
    code = EVENT_CODES.get(canonical(cell).lower())
    if code is None:
      raise DataError(
          f"{source}: event column {name!r} holds {cell!r} at line "
          f"{lines[i]}; expected 1 (event) / 0 (censored) or a two-level "
          "coding such as dead/alive, dead/censored, True/False; recode it "
          "(e.g. R's status 2/1 as 1/0) or choose the column with --event")
    out[i] = code
  return out


def column_kind(table: RawTable, name: str, categorical: bool) -> str:
  """"categorical" or "numeric": ARFF declarations first, then the cells (a
  column with no number in it is categorical; listed ones always are)."""
  kind = table.kinds.get(name)
  if categorical or kind in ("nominal", "string"):
    return "categorical"
  if kind == "numeric":
    return "numeric"
  cells = table.columns[name]
  numbers = any(_float(c) is not None for c in cells if not missing(c))
  return "numeric" if numbers else "categorical"


def _level_key(level: str):
  x = _float(level)
  return (0, x, "") if x is not None else (1, 0.0, level)


def observed_levels(table: RawTable, name: str) -> list[str]:
  """A categorical column's levels present in `table`: in the ARFF's declared
  order, else sorted (numbers numerically, before text)."""
  seen = {canonical(c) for c in table.columns[name] if not missing(c)}
  declared = table.levels.get(name)
  if declared:
    return [v for v in declared if v in seen] + sorted(
        seen - set(declared), key=_level_key)
  return sorted(seen, key=_level_key)


def parse_column(cells: Sequence[str], column: Mapping[str, Any],
                 source: str, lines: Sequence[int]) -> np.ndarray:
  """One covariate's cells per its encoding entry: float64 values (numeric,
  NaN where missing) or int64 level codes (categorical, -1 where missing)."""
  name = column["name"]
  if column["kind"] == "numeric":
    return parse_numbers(
        cells, name, source, lines, fix="fix the cell, or list the column in "
        "data.categorical_columns or data.drop_columns")
  index = {v: k for k, v in enumerate(column["levels"])}
  out = np.full(len(cells), -1, np.int64)
  for i, cell in enumerate(cells):
    if not missing(cell):
      code = index.get(canonical(cell))
      if code is None:
        raise DataError(
            f"{source}: column {name!r} holds unknown level {cell!r} at line "
            f"{lines[i]}; the known levels are {_listed(column['levels'])}; "
            "use one of them (or leave the cell empty to impute it)")
      out[i] = code
  return out


def fill_value(values: np.ndarray, column: Mapping[str, Any], source: str):
  """The train median (numeric) or mode (categorical; ties: first level)."""
  if column["kind"] == "numeric":
    seen = values[np.isfinite(values)]
    fill = float(np.median(seen)) if seen.size else None
  else:
    seen = values[values >= 0]
    counts = np.bincount(seen, minlength=len(column["levels"]))
    fill = column["levels"][int(np.argmax(counts))] if seen.size else None
  if fill is None:
    raise DataError(f"{source}: column {column['name']!r} has no value in the "
                    "train split, so its missing cells cannot be imputed; drop "
                    f"it with --set data.drop_columns={column['name']}")
  return fill


def features(parsed: Sequence[np.ndarray], columns: Sequence[Mapping],
             n: int) -> tuple[np.ndarray, list[int]]:
  """Unstandardised features float64 [n, f] with missing cells filled, and
  the number of cells filled per column (parsed: parse_column's arrays)."""
  out, filled = [np.zeros((n, 0))], []
  for values, column in zip(parsed, columns):
    if column["kind"] == "numeric":
      gap = ~np.isfinite(values)
      out.append(np.where(gap, column["fill"], values)[:, None])
    else:
      gap = values < 0
      codes = np.where(gap, column["levels"].index(column["fill"]), values)
      levels = np.arange(1, len(column["levels"]))
      out.append((codes[:, None] == levels[None, :]).astype(np.float64))
    filled.append(int(gap.sum()))
  return np.concatenate(out, axis=1), filled


def feature_names(columns: Sequence[Mapping]) -> list[str]:
  """"age" for a numeric column, "tgrade=II" per one-hot feature."""
  names = []
  for c in columns:
    names += ([c["name"]] if c["kind"] == "numeric" else
              [f"{c['name']}={v}" for v in c["levels"][1:]])
  return names


def standardize(x: np.ndarray, encoding: Mapping[str, Any]) -> np.ndarray:
  """(x - mean) / std per feature, float32 [n, f]."""
  mean = np.asarray(encoding["mean"], np.float64)
  std = np.asarray(encoding["std"], np.float64)
  return ((x - mean) / std).astype(np.float32)


class EncodedRows(NamedTuple):
  """encode_rows' result: a tuple (x, treatment, time, event) that can also
  be read by key (`encoded["x"]`, `encoded.get("time")`)."""

  x: np.ndarray                  # float32 [n, f]
  treatment: np.ndarray | None   # int32 [n]
  time: np.ndarray | None        # float32 [n]
  event: np.ndarray | None       # int32 [n]

  def __getitem__(self, key):
    return getattr(self, key) if isinstance(key, str) else tuple.__getitem__(
        self, key)

  def get(self, key: str, default=None):
    return getattr(self, key, default)


def encode_rows(header: Sequence[str], rows: Sequence[Sequence[str]],
                encoding: Mapping[str, Any], source: str,
                lines: Sequence[int] | None = None):
  """Encodes new patients' rows as the model's training data was encoded.

  Missing covariate cells take the stored fill values (train medians and
  modes), whatever data.missing was in training.

  Args:
    header: the file's column names.
    rows: text cells, one list per row in header order.
    encoding: the dataset's metadata["encoding"].
    source: the file, for messages.
    lines: the file line of each row (default: row number + 1).

  Returns:
    EncodedRows (x float32 [n, f], treatment int32 [n] or None, time
    float32 [n] or None, event int32 [n] or None). The treatment is None
    when the file has no treatment column; time and event are None unless
    the file has both (NaN / -1 in a row lacking one).
  """
  header = [str(h).strip() for h in header]
  lines = list(lines) if lines is not None else [i + 2 for i in
                                                  range(len(rows))]
  for row, line in zip(rows, lines):
    if len(row) != len(header):
      raise DataError(f"{source}: line {line} has {len(row)} fields but the "
                      f"header has {len(header)}")
  cols = {h: [str(r[j]).strip() for r in rows] for j, h in enumerate(header)}
  columns = encoding["columns"]
  lacking = [c["name"] for c in columns if c["name"] not in cols]
  if lacking:
    raise DataError(
        f"{source} lacks the covariate column(s) {_listed(lacking)} that the "
        f"model was trained on; its columns are {_listed(header)}; add them "
        "(empty cells are imputed)")
  parsed = [parse_column(cols[c["name"]], c, source, lines) for c in columns]
  raw, _ = features(parsed, columns, len(rows))
  x = standardize(raw, encoding)
  treatment = None
  name = encoding.get("treatment_column", "")
  if name and name in cols:
    arm = {"name": name, "kind": "categorical",
           "levels": encoding["treatment_levels"]}
    codes = parse_column(cols[name], arm, source, lines)
    if (codes < 0).any():
      i = int(np.argmax(codes < 0))
      raise DataError(f"{source}: treatment column {name!r} is empty at line "
                      f"{lines[i]}; give every patient an arm "
                      f"({_listed(arm['levels'])})")
    treatment = codes.astype(np.int32)
  time = event = None
  t_col, e_col = encoding["time_column"], encoding["event_column"]
  if t_col in cols and e_col in cols:
    time = parse_time(cols[t_col], t_col, source, lines).astype(np.float32)
    event = parse_event(cols[e_col], e_col, source, lines).astype(np.int32)
  return EncodedRows(x, treatment, time, event)


def encode_table(table: RawTable, encoding: Mapping[str, Any]):
  """`encode_rows` of a table read with `read_table` (any suffix)."""
  return encode_rows(table.header, table.rows(), encoding, table.source,
                     table.lines)
