"""Gene-expression data: the common code of every expression source.

    medgen train vae --data pbmc68k_reduced --data-dir DIR  # DIR holds the file
    medgen train vae --data golub_leukemia --data-dir DIR
    medgen train vae --data cells.h5ad --matrix layers/counts \
        --matrix-kind counts
    medgen train vae --data arrays.csv --matrix-kind scaled \
        --set data.csv_labels=labels.csv --label-key diagnosis

A reader turns a file into a `Table` (one matrix, samples in rows, with its
per-sample columns; `expression_table.py`): `h5ad.py` (.h5ad through
anndata) and `csv_table.py` (.csv); `expression_datasets.py` registers
pbmc68k_reduced and golub_leukemia. Every source then calls `assemble`,
which returns a Dataset of modality "expression" with the arrays
  x             float32 [n, genes]  the chosen matrix (samples in rows),
  label         int32 [n]           when a label column is chosen,
  batch         int32 [n]           when a batch column is chosen,
  library_size  float32 [n]         row sums of x, when x holds counts,
and the metadata gene_names, matrix (which matrix was read), matrix_kind
("counts" | "log_normalized" | "scaled"), transform (what was done to the
values: "none", "log2(max(x, 20))", "z-score by train genes" or both,
joined by ", "), gene_mean / gene_std (float32 [genes], when standardised),
class_names / num_classes and label_key (labelled), batch_names / batch_key
(with a batch), and sample_ids (split -> the ids of its samples, in order).

`assemble` works in this order:
  1. What the matrix holds is checked by meaning, on the values as read:
     counts are non-negative integers, log-normalised values are finite and
     >= 0, scaled values are finite (a "scaled" matrix without negative
     values is logged as a warning).
  2. The samples are split at random (seeded by data.seed, stratified by
     label so each class is in every split when it has enough samples).
  3. data.log_floor > 0: x <- log2(max(x, log_floor)), every split.
  4. --max-genes keeps the genes of highest variance over the TRAIN split
     only (so no test information picks the genes), measured after the log
     (raw microarray variance is dominated by the brightest probes) and
     before standardising (which would give every gene variance 1).
  5. data.standardize: each kept gene z-scored with the TRAIN split's mean
     and standard deviation (ddof 0; a gene constant on train gets std 1),
     applied to every split.
Steps 3 and 5 are refused for counts (count likelihoods need the raw
counts). The options are those of `configs/expression.py`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from medgen_jax.configs.expression import (MATRIX_KINDS, check_transform_kind,
                                           flag_text,
                                           validate_expression_data_options)
from medgen_jax.data.base import MODALITIES, SPLITS, Dataset, Split
from medgen_jax.data.expression_table import (  # noqa: F401 (re-exported)
    Table, check_matrix_kind, encode_column, first_bad, is_fractional,
    is_negative)
from medgen_jax.data.registry import integer_option, option
from medgen_jax.errors import ConfigError, DataError

MODALITY = "expression"
KEY_FIELDS = ("label_key", "batch_key")  # per-sample columns a loader reads
_FIELDS = ("matrix", "matrix_kind", "label_key", "batch_key", "max_genes",
           "val_fraction", "test_fraction", "csv_orientation",
           "csv_ignore_columns", "csv_labels")


# ---------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
  """The expression fields of a `data` section, validated.

  `log_floor` and `standardize` are None for "the dataset's default": a
  registered dataset fills them with `with_defaults`, and `assemble` takes
  a None left over as off.
  """

  matrix: str
  matrix_kind: str
  label_key: str
  batch_key: str
  max_genes: int
  val_fraction: float
  test_fraction: float
  seed: int
  csv_orientation: str
  csv_ignore_columns: tuple[str, ...]
  csv_labels: str
  log_floor: float | None = None
  standardize: bool | None = None

  def with_defaults(self, **defaults: Any) -> Options:
    """These options with each field that is None taken from `defaults`."""
    return dataclasses.replace(self, **{
        k: v for k, v in defaults.items() if getattr(self, k) is None})


def read_options(data_config, dataset: str) -> Options:
  """Reads and validates the expression options of a `data` section.

  Args:
    data_config: the `data` section of an experiment config.
    dataset: the dataset's name or file, for messages.

  Returns:
    The Options; an absent data.log_floor or data.standardize (a config
    saved before they existed) reads as None, the dataset's default.

  Raises:
    ConfigError: a field is absent (the family has no expression options) or
      invalid.
  """
  for field in _FIELDS:
    option(data_config, field, dataset, kind="an expression dataset",
           family="a family that models expression data, such as "
           "`medgen train vae`")
  validate_expression_data_options(data_config)
  d = data_config
  ignore = tuple(p.strip() for p in d.csv_ignore_columns.split(",")
                 if p.strip())
  log_floor = d.get("log_floor", None)
  return Options(
      matrix=d.matrix, matrix_kind=d.matrix_kind, label_key=d.label_key,
      batch_key=d.batch_key, max_genes=int(d.max_genes),
      val_fraction=float(d.val_fraction),
      test_fraction=float(d.test_fraction),
      seed=integer_option(d.get("seed", None), "--set data.seed=...", 0),
      csv_orientation=d.csv_orientation, csv_ignore_columns=ignore,
      csv_labels=d.csv_labels,
      log_floor=None if log_floor is None else float(log_floor),
      standardize=d.get("standardize", None))


def need_kind(source: str, matrix: str) -> ConfigError:
  """The error for a file whose matrix kind the user must state."""
  return ConfigError(
      f"{flag_text('matrix_kind')}: say what {source} matrix {matrix} holds: "
      "counts (non-negative integer counts), log_normalized (log1p of "
      "normalised counts) or scaled (real values of any sign, e.g. z-scored "
      "genes or microarray signal)")


# ---------------------------------------------------------------------------
# Split, transforms, gene selection, and the Dataset.
# ---------------------------------------------------------------------------


def _round(x: float) -> int:
  return int(math.floor(x + 0.5))


def split_indices(n: int, labels: np.ndarray | None, val_fraction: float,
                  test_fraction: float, seed: int,
                  test_rows: np.ndarray | None = None
                  ) -> dict[str, np.ndarray]:
  """Seeded random split of `n` samples, stratified by `labels`.

  Within each class (or over all samples when unlabelled) a split takes
  round(fraction * class size) samples; a class that has at least one sample
  per split gets at least one in each, and always keeps one for training.

  Args:
    n: number of samples.
    labels: int [n] class indices, or None.
    val_fraction: fraction for "val" (0 = no val split).
    test_fraction: fraction for "test" (0 = no test split); ignored when
      `test_rows` is given.
    seed: the split's seed.
    test_rows: an official test set (row indices); then "val" is carved from
      the other rows.

  Returns:
    split name -> sorted int64 row indices; disjoint, covering 0..n-1.

  Raises:
    DataError: a split with a positive fraction would be empty.
  """
  rng = np.random.default_rng(seed)
  out: dict[str, list[np.ndarray]] = {"train": []}
  if test_rows is not None:
    test_rows = np.unique(np.asarray(test_rows, np.int64))
    pool = np.setdiff1d(np.arange(n), test_rows)
    fractions = {"val": val_fraction}
  else:
    pool = np.arange(n)
    fractions = {"test": test_fraction, "val": val_fraction}
  wanted = [s for s, f in fractions.items() if f > 0]
  out.update({s: [] for s in wanted})
  groups = ([pool] if labels is None else
            [pool[labels[pool] == c] for c in np.unique(labels[pool])])
  for group in groups:
    group = rng.permutation(group)
    m = len(group)
    counts = {s: _round(fractions[s] * m) for s in wanted}
    if labels is not None and m > len(wanted):
      counts = {s: max(c, 1) for s, c in counts.items()}
    while wanted and sum(counts.values()) >= m and any(counts.values()):
      counts[max(wanted, key=lambda s: counts[s])] -= 1  # keep one to train
    start = 0
    for s in wanted:
      out[s].append(group[start:start + counts[s]])
      start += counts[s]
    out["train"].append(group[start:])
  result = {s: np.sort(np.concatenate(parts)) if parts else
            np.zeros(0, np.int64) for s, parts in out.items()}
  for s in wanted:
    if len(result[s]) == 0:
      field = f"data.{s}_fraction"
      raise DataError(
          f"{field}={fractions[s]:g} of {len(pool)} samples leaves the {s} "
          f"split empty; raise {field} to at least "
          f"{min(1.0 / max(len(pool), 1), 0.99):.3g} (--set {field}=...), or "
          "set it to 0 for no such split")
  if test_rows is not None and len(test_rows):
    result["test"] = test_rows
  result = {s: result[s] for s in SPLITS if s in result}
  if len(result["train"]) == 0:
    raise DataError(f"no samples are left for the train split of {n} "
                    "samples; lower data.val_fraction and data.test_fraction")
  return result


def select_genes(train_x: np.ndarray, max_genes: int) -> np.ndarray | None:
  """Columns of the `max_genes` highest-variance genes of `train_x`.

  Ties go to the earlier gene, so the choice is deterministic.

  Args:
    train_x: [n_train, genes], the TRAIN split only (no test information).
    max_genes: how many to keep; 0 (or >= genes) keeps all.

  Returns:
    Sorted int column indices, or None when every gene is kept.
  """
  genes = train_x.shape[1]
  if max_genes <= 0 or max_genes >= genes:
    return None
  var = train_x.astype(np.float64).var(axis=0)  # [genes]
  order = np.lexsort((np.arange(genes), -var))
  return np.sort(order[:max_genes])


def log_floor(x: np.ndarray, floor: float) -> np.ndarray:
  """log2(max(x, floor)) of every entry; float32 [n, genes].

  Args:
    x: float32 [n, genes], e.g. raw microarray signal (negatives included).
    floor: > 0; smaller values (and negatives) become log2(floor).
  """
  return np.log2(np.maximum(x, np.float32(floor)), dtype=np.float32)


STD_FLOOR_FRACTION = 0.1


def gene_statistics(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-gene mean and standard deviation (ddof 0) of the TRAIN split.

  Args:
    train_x: float32 [n_train, genes], the train split only.

  Returns:
    (mean, std), float32 [genes] each, computed in float64. A gene constant
    on the train split gets its value as the mean and std 1, so that its
    train values become exactly 0 (not ±1 from rounding) and other splits
    keep their differences from it unscaled. A nearly constant gene's std
    is floored at STD_FLOOR_FRACTION of the median std of the varying genes
    (still train-only): without the floor, a probe that sits at the log floor
    in every training sample but one turned a single held-out value into a
    z-score of 300 in Golub.
  """
  t = train_x.astype(np.float64)
  mean, std = t.mean(axis=0), t.std(axis=0)
  constant = (train_x == train_x[:1]).all(axis=0)  # [genes]
  if (~constant).any():
    std = np.maximum(std, STD_FLOOR_FRACTION * np.median(std[~constant]))
  mean[constant], std[constant] = t[0, constant], 1.0
  return mean.astype(np.float32), std.astype(np.float32)


def _transform_text(floor: float, standardize: bool) -> str:
  """metadata["transform"]: "log2(max(x, 20)), z-score by train genes"."""
  done = ([f"log2(max(x, {floor:g}))"] if floor > 0 else []) + (
      ["z-score by train genes"] if standardize else [])
  return ", ".join(done) or "none"


def assemble(name: str, table: Table, opts: Options, kind: str, *,
             test_rows: np.ndarray | None = None) -> Dataset:
  """Checks `table` by meaning, splits it and builds the expression Dataset.

  The steps and their order are in the module docstring: check, split, log
  floor, gene selection, standardisation.

  Args:
    name: the dataset's name.
    table: the matrix and its per-sample columns.
    opts: the options (fractions, seed, max_genes, log_floor, standardize;
      a log_floor or standardize still None is off).
    kind: what the matrix holds (resolved: never "").
    test_rows: an official test set's rows (see `split_indices`).

  Raises:
    ConfigError: a transform is asked of a counts matrix.
    DataError: the matrix does not hold what `kind` says, or a split or a
      counts row is empty.
  """
  floor, standardize = opts.log_floor or 0.0, bool(opts.standardize)
  check_transform_kind(kind, floor, standardize)
  check_matrix_kind(table, kind)
  encoded = {}
  for field in KEY_FIELDS:
    if field in table.columns:
      where = f"{table.source}: column {table.column_names[field]!r}"
      encoded[field] = encode_column(table.columns[field], where, table)
  labels = encoded.get("label_key", (None, ()))[0]
  parts = split_indices(len(table.x), labels, opts.val_fraction,
                        opts.test_fraction, opts.seed, test_rows)
  x, genes = table.x, table.gene_names
  if floor > 0:
    x = log_floor(x, floor)
  keep = select_genes(x[parts["train"]], opts.max_genes)
  if keep is not None:
    x, genes = x[:, keep], tuple(genes[j] for j in keep)
  metadata: dict[str, Any] = {"gene_names": genes, "matrix": table.matrix,
                              "matrix_kind": kind,
                              "transform": _transform_text(floor, standardize)}
  if standardize:
    mean, std = gene_statistics(x[parts["train"]])
    x = (x - mean) / std  # float32 [n, genes]
    metadata.update(gene_mean=mean, gene_std=std)
  arrays = {"x": x}
  if "label_key" in encoded:
    arrays["label"], names = encoded["label_key"]
    metadata.update(class_names=names, num_classes=len(names),
                    label_key=table.column_names["label_key"])
  if "batch_key" in encoded:
    arrays["batch"], names = encoded["batch_key"]
    metadata.update(batch_names=names,
                    batch_key=table.column_names["batch_key"])
  if kind == "counts":
    library = x.sum(axis=1, dtype=np.float64).astype(np.float32)  # [n]
    if not (library > 0).all():
      i = int(np.argmin(library > 0))
      chosen = f" of the {x.shape[1]} genes kept" if keep is not None else ""
      raise DataError(
          f"{table.source}: {table.unit} {i} ({table.sample_ids[i]!r}) has no "
          f"counts in matrix {table.matrix}{chosen}; drop empty "
          f"{table.unit}s from the file" +
          (" or raise --max-genes" if keep is not None else ""))
    arrays["library_size"] = library
  metadata["sample_ids"] = {
      s: tuple(table.sample_ids[i] for i in idx) for s, idx in parts.items()}
  splits = {s: Split({k: v[idx] for k, v in arrays.items()})
            for s, idx in parts.items()}
  return Dataset(name=name, splits=splits, source=table.source,
                 modality=MODALITY, metadata=metadata)


@MODALITIES.register(MODALITY)
def _expression_modality(ds: Dataset) -> None:
  """Key "x" float [n, genes >= 1], gene names, kind, counts, class/batch."""
  where = f"{ds.source}: expression dataset {ds.name!r}"
  train = ds.split("train")
  if "x" not in train:
    raise DataError(f"{where} has no key 'x' (it has {list(train.keys())}); "
                    "an expression dataset holds the matrix under 'x'")
  x = train["x"]
  if x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] < 1:
    raise DataError(f"{where}: 'x' has dtype {x.dtype} and shape {x.shape}; "
                    "expected float values [n, genes] with at least one gene")
  genes = ds.metadata.get("gene_names")
  if genes is None or len(genes) != x.shape[1]:
    have = "no" if genes is None else len(genes)
    raise DataError(f"{where} has {have} gene names for {x.shape[1]} genes; "
                    "give one name per column of 'x' (metadata gene_names)")
  kind = ds.metadata.get("matrix_kind")
  if kind not in MATRIX_KINDS:
    raise DataError(f"{where} has metadata matrix_kind {kind!r}; expected one "
                    f"of {', '.join(MATRIX_KINDS)}")
  for stat in ("gene_mean", "gene_std"):
    if stat in ds.metadata and np.shape(ds.metadata[stat]) != x.shape[1:]:
      raise DataError(f"{where} has metadata {stat} of shape "
                      f"{np.shape(ds.metadata[stat])} for {x.shape[1]} genes; "
                      "give one value per column of 'x'")
  for name, split in ds.splits.items():
    v = split["x"]
    if kind == "counts" and (first_bad(v, is_negative) or
                             first_bad(v, is_fractional)):
      raise DataError(f"{where}: split {name!r} is said to hold counts but "
                      "has negative or non-integer values; build it with "
                      "data.expression.assemble")
    if kind == "counts" and "library_size" not in split:
      raise DataError(f"{where}: split {name!r} holds counts but no "
                      "'library_size'; build it with data.expression.assemble")
  if "label" in train:
    k, names = ds.metadata.get("num_classes"), ds.class_names
    if not isinstance(k, int) or k < 1 or len(names) != k:
      raise DataError(f"{where} has labels but metadata num_classes {k!r} "
                      f"and {len(names)} class names; give one name per class")
  if "batch" in train:
    names = tuple(ds.metadata.get("batch_names", ()))
    for name, split in ds.splits.items():
      b = split["batch"]
      if b.dtype.kind not in "iu" or b.ndim != 1 or (b < 0).any() or (
          b >= len(names)).any():
        raise DataError(f"{where}: split {name!r} key 'batch' must hold "
                        f"indices into the {len(names)} batch_names")


