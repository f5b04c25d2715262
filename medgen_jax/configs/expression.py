"""Data options of the gene-expression datasets (the VAE family's data).

    medgen train vae --data pbmc68k_reduced --data-dir DIR
    medgen train vae --data cells.h5ad --matrix layers/counts \
        --matrix-kind counts --label-key cell_type
    medgen train vae --data golub.csv --matrix-kind scaled \
        --set data.csv_ignore_columns='call,Gene Description'

A family that trains on expression data adds these fields to its `data`
section with `add_expression_data_options(config.data)`, checks them with
`validate_expression_data_options(config.data)` and may offer the command-line
flags of `EXPRESSION_FLAGS` (`Flag(*f) for f in EXPRESSION_FLAGS`); the
loaders (`data/expression.py`) name a field by its flag in their messages
through `flag_text`, so the two stay consistent.
"""

from __future__ import annotations

import re

import ml_collections
from ml_collections import config_dict

from medgen_jax.configs.base import check_int, check_real, data_flag_text
from medgen_jax.errors import ConfigError

MATRIX_KINDS = ("counts", "log_normalized", "scaled")
CSV_ORIENTATIONS = ("genes_by_samples", "samples_by_genes")

# (flag, config field, help): a family turns them into train.task.Flag's.
EXPRESSION_FLAGS = (
    ("--matrix", "data.matrix", "X | raw | layers/NAME (.h5ad): the matrix "
     "to model; default: the registered dataset's"),
    ("--matrix-kind", "data.matrix_kind", "counts | log_normalized | scaled: "
     "what the matrix holds (required for your own file)"),
    ("--label-key", "data.label_key", "obs / label-file column of the class "
     "labels (empty: none, or the dataset's default)"),
    ("--batch-key", "data.batch_key", "obs / label-file column of a batch "
     "covariate (empty: none)"),
    ("--max-genes", "data.max_genes", "keep the N most variable genes "
     "(train-split variance); 0 = all"),
)

_MATRIX = re.compile(r"^(X|raw|layers/.+)$")


def flag_text(field: str, value: str = "...") -> str:
  """How a user sets data.`field`: "--matrix-kind counts" or
  "--set data.csv_labels=..." when the field has no flag of its own."""
  return data_flag_text(EXPRESSION_FLAGS, field, value)


def add_expression_data_options(data: ml_collections.ConfigDict) -> None:
  """Adds the expression-data fields to a `data` section (defaults inline)."""
  # Which matrix of an .h5ad: "X", "raw" (.raw.X, genes .raw.var_names) or
  # "layers/NAME". "" = a registered dataset's default; a user's .h5ad must
  # name one. A .csv holds one matrix ("" or "X").
  data.matrix = ""
  # What the matrix holds, checked by meaning: "counts" (non-negative
  # integers: a count likelihood, library_size provided), "log_normalized"
  # (log1p of normalised counts: finite, >= 0) or "scaled" (real values of
  # any sign, e.g. z-scored genes or microarray signal: a Gaussian
  # likelihood). "" = a registered dataset's known kind; required for a file.
  data.matrix_kind = ""
  data.label_key = ""        # class-label column; "" = none (or the default)
  data.batch_key = ""        # batch-covariate column; "" = none
  data.max_genes = 0         # keep the N most variable genes (train); 0 = all
  # Random split of the samples, seeded by data.seed and stratified by label;
  # 0 = no such split. Datasets with an official test set (golub_leukemia)
  # use it and take only val_fraction of their training samples.
  data.val_fraction = 0.1
  data.test_fraction = 0.1
  # .csv files: "genes_by_samples" (one row per gene, one column per sample:
  # the usual microarray export) or "samples_by_genes".
  data.csv_orientation = "genes_by_samples"
  # .csv files: columns to skip, comma-separated names; each may be a shell
  # pattern with * and ? (e.g. "call,Gene Description" or "call*").
  # Non-numeric columns that are not skipped are refused.
  data.csv_ignore_columns = ""
  # .csv files: a CSV whose first column holds the sample ids and whose other
  # columns hold per-sample annotations (data.label_key, data.batch_key name
  # them); a relative path is taken from the working directory.
  data.csv_labels = ""
  # Transforms of a real-valued matrix, done by the loader after the split
  # and checks by meaning: (1) data.log_floor > 0: x <- log2(max(x,
  # log_floor)), for raw microarray signal (MAS5 values include negatives);
  # (2) --max-genes then ranks genes by train variance on that scale; (3)
  # data.standardize: each kept gene z-scored with the TRAIN split's mean and
  # std (ddof 0; a gene constant on train gets std 1), the same statistics
  # for every split, kept in the metadata as gene_mean / gene_std. Both are
  # refused for --matrix-kind counts (count likelihoods need the raw counts).
  # None (null; --set data.log_floor=none) = the dataset's default: off for
  # every dataset and file except golub_leukemia (log_floor 20, standardize
  # true); 0 / false = off, whatever the dataset.
  data.log_floor = config_dict.placeholder(float)
  data.standardize = config_dict.placeholder(bool)


def check_transform_kind(kind: str, log_floor, standardize) -> None:
  """ConfigError when a transform is asked of a counts matrix.

  Args:
    kind: the matrix kind ("" = not known yet: nothing to check).
    log_floor: data.log_floor (None or 0 = off).
    standardize: data.standardize (None or False = off).
  """
  asked = ([f"--set data.log_floor={log_floor:g}"] if log_floor else []) + (
      ["--set data.standardize=true"] if standardize else [])
  if kind == "counts" and asked:
    raise ConfigError(
        f"{' and '.join(asked)} would transform the values, but "
        f"{flag_text('matrix_kind', 'counts')} keeps raw counts for a count "
        "likelihood; leave data.log_floor at 0 and data.standardize false, "
        "or model a real-valued matrix (--matrix-kind log_normalized or "
        "scaled)")


def validate_expression_data_options(data) -> None:
  """Checks the expression fields by meaning; ConfigError naming the field."""
  for field in ("matrix", "matrix_kind", "label_key", "batch_key",
                "csv_orientation", "csv_ignore_columns", "csv_labels"):
    if not isinstance(data[field], str):
      raise ConfigError(f"data.{field} must be a string, got "
                        f"{data[field]!r}")
  if data.matrix and not _MATRIX.match(data.matrix):
    raise ConfigError(
        f"{flag_text('matrix', repr(data.matrix))}: expected X, raw or "
        "layers/NAME (or empty for a registered dataset's default)")
  if data.matrix_kind and data.matrix_kind not in MATRIX_KINDS:
    raise ConfigError(
        f"{flag_text('matrix_kind', repr(data.matrix_kind))}: expected one of "
        f"{', '.join(MATRIX_KINDS)}")
  if data.label_key and data.label_key == data.batch_key:
    raise ConfigError(
        f"data.label_key and data.batch_key are both {data.label_key!r}; a "
        "column is either the class label or the batch covariate")
  check_int(data.max_genes, "data.max_genes", 0)
  val = check_real(data.val_fraction, "data.val_fraction", 0.0, 1.0,
                   hi_open=True)
  test = check_real(data.test_fraction, "data.test_fraction", 0.0, 1.0,
                    hi_open=True)
  if val + test >= 1.0:
    raise ConfigError(
        f"data.val_fraction + data.test_fraction = {val + test:g} leaves no "
        "training samples; their sum must be < 1")
  if data.csv_orientation not in CSV_ORIENTATIONS:
    raise ConfigError(
        f"data.csv_orientation {data.csv_orientation!r}: expected one of "
        f"{', '.join(CSV_ORIENTATIONS)}")
  log_floor = data.get("log_floor", None)
  standardize = data.get("standardize", None)
  if log_floor is not None:
    check_real(log_floor, "data.log_floor", 0.0)
  if standardize is not None and not isinstance(standardize, bool):
    raise ConfigError(f"data.standardize must be true, false or null (the "
                      f"dataset's default), got {standardize!r}")
  check_transform_kind(data.matrix_kind, log_floor, standardize)
