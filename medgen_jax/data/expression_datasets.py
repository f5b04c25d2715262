"""The registered gene-expression datasets: pbmc68k_reduced, golub_leukemia.

    medgen train vae --data pbmc68k_reduced --data-dir DIR  # DIR holds the file
    medgen train vae --data golub_leukemia --data-dir DIR

Neither has a download: --data-dir names the folder holding the files, and a
missing file is a one-line error saying where to get it. Each dataset fills
in the options a user leaves at "dataset default" (--matrix and
--matrix-kind empty, data.log_floor and data.standardize None) with what
suits its values, then builds the Dataset with `expression.assemble`.

This module sits above the readers (`h5ad.py`, `csv_table.py`) and the
common code (`expression.py`), so that none of them imports another in a
cycle.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from medgen_jax.configs.expression import flag_text
from medgen_jax.data.base import Dataset
from medgen_jax.data.csv_table import attach_annotations, read_csv_table
from medgen_jax.data.expression import assemble, need_kind, read_options
from medgen_jax.data.expression_table import Table
from medgen_jax.data.h5ad import h5ad_table, read_h5ad
from medgen_jax.data.registry import DATASETS
from medgen_jax.errors import ConfigError, DataError


def _data_dir(data_config, dataset: str, files: Sequence[str],
              where: str) -> pathlib.Path:
  """<data_dir>, checked to hold `files`; a one-line error says where to get
  them (these datasets have no download)."""
  listed = ", ".join(files)
  folder = str(data_config.get("data_dir", "") or "")
  if not folder:
    raise ConfigError(
        f"dataset {dataset!r} needs --data-dir, the folder holding {listed}; "
        f"{where} (there is no download)")
  folder_path = pathlib.Path(folder).expanduser()
  missing = [f for f in files if not (folder_path / f).is_file()]
  if missing:
    raise DataError(f"{folder_path / missing[0]} not found; dataset "
                    f"{dataset!r} needs {listed} in --data-dir; {where}")
  return folder_path


PBMC_FILE = "10x_pbmc68k_reduced.h5ad"
PBMC_KINDS = {"raw": "log_normalized", "X": "scaled"}


@DATASETS.register("pbmc68k_reduced")
def load_pbmc68k_reduced(data_config) -> Dataset:
  """scanpy's reduced 10x PBMC 68k: 700 cells x 765 genes, 10 cell types.

  The file has no counts: `raw` (.raw.X, the default matrix) is
  log-normalised (log1p of normalised counts, 0..6.5) and `X` is scaled
  (z-scored, clipped; -2..28), so both take a Gaussian-type likelihood and
  `--matrix-kind counts` is refused. Labels default to obs 'bulk_labels' (10
  cell types); obs also has 'louvain' and 'phase'. No transform by default
  (data.log_floor 0, data.standardize false).

  Source: `scanpy/datasets/10x_pbmc68k_reduced.h5ad` in the scanpy package
  (Zheng et al., Nat Commun 2017; Wolf et al., Genome Biol 2018).
  """
  name = "pbmc68k_reduced"
  opts = read_options(data_config, name)
  folder = _data_dir(
      data_config, name, [PBMC_FILE], "it ships with scanpy as "
      "scanpy/datasets/10x_pbmc68k_reduced.h5ad (pip download scanpy)")
  path = folder / PBMC_FILE
  adata = read_h5ad(path)
  matrix = opts.matrix or "raw"
  kind = opts.matrix_kind or PBMC_KINDS.get(matrix, "")
  if not kind:
    raise need_kind(str(path), matrix)
  keys = {"label_key": opts.label_key or "bulk_labels",
          "batch_key": opts.batch_key}
  return assemble(name, h5ad_table(adata, path, matrix, keys), opts, kind)


GOLUB_TRAIN = "data_set_ALL_AML_train.csv"
GOLUB_TEST = "data_set_ALL_AML_independent.csv"
GOLUB_LABELS = "actual.csv"
# The dataset's default transforms (a user's data.log_floor / standardize
# overrides each): MAS5 signal floored at 20 and log2-transformed, then each
# gene z-scored with the train split's statistics.
GOLUB_LOG_FLOOR = 20.0
GOLUB_STANDARDIZE = True


@DATASETS.register("golub_leukemia")
def load_golub_leukemia(data_config) -> Dataset:
  """Golub et al. (1999) leukaemia microarrays: ALL vs AML, 7129 probes.

  The official split is kept: the 38 training patients (of which
  --set data.val_fraction carves a stratified val split) and the 34
  independent patients as `test` (data.test_fraction is not used). Labels
  (ALL, AML) come from actual.csv's `cancer` column, matched by patient
  number to the value columns' headers; the per-patient "call" (P/A/M)
  columns are skipped and the probe accession numbers name the genes.

  The values are Affymetrix MAS5 signal (about -28400..71400, negative where
  the mismatch probe is brighter): neither counts nor log-normalised, so the
  matrix kind is "scaled" (real values for a Gaussian likelihood). Raw, they
  span five orders of magnitude and a Gaussian VAE's loss overflows at its
  first step, so by default they are transformed as this dataset usually is:
  thresholded, log-transformed and standardised. Here: x <- log2(max(x, 20))
  (data.log_floor=20, the floor used for this dataset in the benchmark of
  Pochet et al., Bioinformatics 20:3185, 2004), then each gene z-scored with
  the TRAIN split's mean and std (data.standardize=true). Dudoit, Fridlyand
  & Speed (JASA 97:77, 2002) threshold at 100 and 16000, filter genes, take
  log10 and then standardise each array (sample) across genes; per-gene
  statistics from the train split are used here instead, so that no test
  value shapes the scale and every gene reaches the likelihood on a common
  scale. --set data.log_floor=0 --set data.standardize=false gives the raw
  values; see `configs/expression.py` for the options.

  Source: the Broad Institute's files as copied on Kaggle ("Gene expression
  dataset (Golub et al.)"); Golub T.R. et al., Science 286:531-537 (1999).
  """
  name = "golub_leukemia"
  opts = read_options(data_config, name)
  folder = _data_dir(
      data_config, name, [GOLUB_TRAIN, GOLUB_TEST, GOLUB_LABELS],
      "get them from Kaggle's 'Gene expression dataset (Golub et al.)' "
      "(crawford/gene-expression)")
  if opts.matrix not in ("", "X"):
    raise ConfigError(f"{flag_text('matrix', opts.matrix)}: {name} holds one "
                      "matrix (MAS5 signal); leave --matrix empty")
  kind = opts.matrix_kind or "scaled"
  if kind != "counts":  # counts are refused by meaning, with a clearer reason
    opts = opts.with_defaults(log_floor=GOLUB_LOG_FLOOR,
                              standardize=GOLUB_STANDARDIZE)
  train = read_csv_table(folder / GOLUB_TRAIN, "genes_by_samples", ("call",))
  test = read_csv_table(folder / GOLUB_TEST, "genes_by_samples", ("call",))
  if train.gene_names != test.gene_names:
    raise DataError(f"{folder}: {GOLUB_TRAIN} and {GOLUB_TEST} list different "
                    "genes (or in another order); replace them with the "
                    "original files")
  table = Table(x=np.concatenate([train.x, test.x]),
                gene_names=train.gene_names,
                sample_ids=train.sample_ids + test.sample_ids, columns={},
                column_names={}, source=str(folder), matrix="X",
                unit="patient")
  attach_annotations(table, folder / GOLUB_LABELS,
                     {"label_key": opts.label_key or "cancer",
                      "batch_key": opts.batch_key})
  test_rows = np.arange(len(train.x), len(table.x))
  return assemble(name, table, opts, kind, test_rows=test_rows)
