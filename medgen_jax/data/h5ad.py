"""Reading .h5ad files (AnnData) into an expression Table, and `--data X.h5ad`.

    medgen train vae --data cells.h5ad --matrix layers/counts \
        --matrix-kind counts --label-key cell_type

An .h5ad is read through the optional `anndata` package
(`pip install 'medgen_jax[expression]'`). Its matrices are `X`, `raw`
(`.raw.X`, whose genes are `.raw.var_names`) and `layers/NAME`; a user's file
must name one with --matrix and say what it holds with --matrix-kind. Sparse
matrices are densified when they fit the memory bound
(`registry.memory_limit_bytes`); labels and batches are `obs` columns. The
Table read here goes through `expression.assemble` (checks by meaning, split,
transforms, gene selection) like every other expression source.
"""

from __future__ import annotations

import pathlib
import warnings
from typing import Any, Mapping

import numpy as np

from medgen_jax.configs.expression import flag_text
from medgen_jax.data.base import Dataset
from medgen_jax.data.expression import (KEY_FIELDS, assemble, need_kind,
                                        read_options)
from medgen_jax.data.expression_table import Table, one_line
from medgen_jax.data.registry import (FILE_FORMATS, format_bytes,
                                      memory_limit_bytes)
from medgen_jax.errors import ConfigError, DataError

ANNDATA_HINT = ("reading .h5ad needs anndata: pip install "
                "'medgen_jax[expression]'")


def _check_fits(path, shape: tuple[int, int], what: str) -> None:
  limit = memory_limit_bytes()
  need = int(shape[0]) * int(shape[1]) * 4  # dense float32
  if limit is not None and need > limit:
    raise DataError(
        f"{path}: {what} is {shape[0]} x {shape[1]}; dense float32 it takes "
        f"{format_bytes(need)}, more than the {format_bytes(limit)} this "
        "machine allows for one dataset; keep fewer genes or cells in the "
        "file (e.g. highly variable genes) or use a machine with more memory")


def read_h5ad(path) -> Any:
  """Reads an .h5ad file into an AnnData (needs the `anndata` package).

  Args:
    path: the file.

  Returns:
    The AnnData.

  Raises:
    ConfigError: anndata is not installed.
    DataError: the file is absent, too large for memory, or not an .h5ad.
  """
  try:
    import anndata  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError(ANNDATA_HINT) from None
  path = pathlib.Path(path)
  if not path.is_file():
    raise DataError(f"{path}: no such file")
  limit = memory_limit_bytes()
  size = path.stat().st_size
  if limit is not None and size > limit:
    raise DataError(
        f"{path} takes {format_bytes(size)}, more than the "
        f"{format_bytes(limit)} this machine allows for one dataset; use a "
        "smaller file or a machine with more memory")
  try:
    with warnings.catch_warnings():
      # Notes on the file's format version and API deprecations: nothing a
      # user of medgen can act on.
      warnings.simplefilter("ignore", FutureWarning)
      warnings.simplefilter("ignore", DeprecationWarning)
      warnings.filterwarnings("ignore", module="anndata")
      return anndata.read_h5ad(path)
  except MemoryError:
    raise
  except Exception as e:  # h5py, anndata and pandas raise many kinds
    raise DataError(f"{path} is not a readable .h5ad file ({type(e).__name__}: "
                    f"{one_line(e)}); replace it with a file written by "
                    "anndata (AnnData.write_h5ad)") from None


def h5ad_matrices(adata) -> list[str]:
  """The matrices an AnnData holds: "X", "raw", "layers/NAME"."""
  names = ["X"] if adata.X is not None else []
  if adata.raw is not None:
    names.append("raw")
  return names + [f"layers/{k}" for k in adata.layers.keys()]


def h5ad_table(adata, path, matrix: str, keys: Mapping[str, str]) -> Table:
  """The Table of one matrix of an AnnData and the obs columns in `keys`.

  Args:
    adata: the AnnData.
    path: its file, for messages.
    matrix: "X", "raw" or "layers/NAME".
    keys: key field ("label_key", "batch_key") -> obs column ("" = none).

  Returns:
    The Table: x float32 [cells, genes], unit "cell".
  """
  have = h5ad_matrices(adata)
  if matrix not in have:
    raise ConfigError(f"{flag_text('matrix', matrix)}: {path} has no such "
                      f"matrix; it has {', '.join(have) or 'none'}")
  if matrix == "raw":
    m, genes = adata.raw.X, adata.raw.var_names
  elif matrix == "X":
    m, genes = adata.X, adata.var_names
  else:
    m, genes = adata.layers[matrix[len("layers/"):]], adata.var_names
  _check_fits(path, m.shape, f"matrix {matrix}")
  if hasattr(m, "toarray"):  # scipy.sparse (and anndata's sparse datasets)
    m = m.toarray()
  x = np.asarray(m)
  if x.ndim != 2 or x.dtype.kind not in "biuf":
    raise DataError(f"{path}: matrix {matrix} has dtype {x.dtype} and shape "
                    f"{x.shape}; expected numbers [cells, genes]")
  columns, names = {}, {}
  for field, key in keys.items():
    if not key:
      continue
    if key not in adata.obs.columns:
      raise DataError(
          f"{path}: obs has no column {key!r} ({flag_text(field, key)}); its "
          f"columns are: {', '.join(map(str, adata.obs.columns)) or 'none'}")
    columns[field], names[field] = adata.obs[key], key
  return Table(x=x.astype(np.float32, copy=False),
               gene_names=tuple(str(g) for g in genes),
               sample_ids=tuple(str(s) for s in adata.obs_names),
               columns=columns, column_names=names, source=str(path),
               matrix=matrix, unit="cell")


@FILE_FORMATS.register(".h5ad")
def load_h5ad_file(path: pathlib.Path, data_config) -> Dataset:
  """`--data PATH.h5ad`: --matrix and --matrix-kind must be given."""
  opts = read_options(data_config, path.name)
  adata = read_h5ad(path)
  if not opts.matrix:
    have = h5ad_matrices(adata)
    raise ConfigError(f"{flag_text('matrix', '').strip()}: {path} has "
                      f"{', '.join(have) or 'no matrix'}; choose one "
                      "explicitly")
  if not opts.matrix_kind:
    raise need_kind(str(path), opts.matrix)
  table = h5ad_table(adata, path, opts.matrix,
                     {f: getattr(opts, f) for f in KEY_FIELDS})
  return assemble(path.name, table, opts, opts.matrix_kind)
