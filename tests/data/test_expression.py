"""Expression datasets: .h5ad / .csv readers, checks by meaning, the split,
the transforms (log floor, standardisation)."""

import csv
import logging
import sys

import numpy as np
import pytest
import scipy.sparse

from medgen_jax.configs.base import get_base_config
from medgen_jax.configs.expression import (add_expression_data_options,
                                           validate_expression_data_options)
from medgen_jax.data import expression, expression_datasets, expression_table
from medgen_jax.data import h5ad as h5ad_reader
from medgen_jax.data.base import Dataset, Split, check_dataset
from medgen_jax.data.registry import dataset_names, load_dataset
from medgen_jax.errors import ConfigError, DataError, UnknownNameError

anndata = pytest.importorskip("anndata")
pd = pytest.importorskip("pandas")


def _data(name, **fields):
  """The data section of a config with the expression options."""
  c = get_base_config()
  add_expression_data_options(c.data)
  c.data.name = str(name)
  for key, value in fields.items():
    c.data[key] = value
  return c.data


def _raises(cls, fn, *args):
  """Runs fn(*args), expects `cls`, returns its one-line message."""
  with pytest.raises(cls) as info:
    fn(*args)
  message = str(info.value)
  assert "\n" not in message
  return message


def _everything(ds):
  """{key: array} over all splits, rows back in sample-id order."""
  ids = [i for s in ds.splits for i in ds.metadata["sample_ids"][s]]
  order = np.argsort(np.array(ids, dtype=object).astype(str), kind="stable")
  return {k: np.concatenate([ds.splits[s][k] for s in ds.splits])[order]
          for k in ds.keys}, np.array(ids)[order]


# --- .h5ad -------------------------------------------------------------------

N_CELLS, N_GENES = 24, 5


def _adata(sparse=False, obs=True):
  """24 cells x 5 genes: counts layer, log raw (6 genes), scaled X."""
  rng = np.random.default_rng(0)
  counts = rng.poisson(3.0, (N_CELLS, N_GENES)).astype(np.float32)
  counts[:, 0] += 1  # no empty cell
  raw_counts = np.concatenate([counts, np.ones((N_CELLS, 1), np.float32)], 1)
  log = np.log1p(raw_counts / raw_counts.sum(1, keepdims=True) * 1e4)
  scaled = (counts - counts.mean(0)) / counts.std(0)
  ad = anndata.AnnData(
      X=scipy.sparse.csr_matrix(counts) if sparse else scaled,
      var=pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)]),
      obs=pd.DataFrame(index=[f"cell{i}" for i in range(N_CELLS)]))
  raw = anndata.AnnData(
      X=log, var=pd.DataFrame(index=[f"raw{j}" for j in range(N_GENES + 1)]),
      obs=pd.DataFrame(index=ad.obs_names))
  ad.raw = raw
  ad.layers["counts"] = counts
  if obs:
    types = ["T", "B", "NK"] * (N_CELLS // 3)
    ad.obs["cell_type"] = pd.Categorical(types, categories=["NK", "T", "B",
                                                             "unused"])
    ad.obs["donor"] = ["d2", "d1"] * (N_CELLS // 2)
    ad.obs["score"] = np.linspace(0, 1, N_CELLS)
  return ad, counts, log, scaled


@pytest.fixture
def h5ad(tmp_path):
  ad, counts, log, scaled = _adata()
  path = tmp_path / "cells.h5ad"
  ad.write_h5ad(path)
  return path, counts, log, scaled


def test_h5ad_matrix_selection_and_gene_names(h5ad):
  path, counts, log, scaled = h5ad
  cases = (("X", "scaled", scaled, [f"g{j}" for j in range(N_GENES)]),
           ("raw", "log_normalized", log,
            [f"raw{j}" for j in range(N_GENES + 1)]),
           ("layers/counts", "counts", counts,
            [f"g{j}" for j in range(N_GENES)]))
  for matrix, kind, expected, genes in cases:
    ds = load_dataset(_data(path, matrix=matrix, matrix_kind=kind))
    assert ds.modality == "expression" and ds.name == "cells.h5ad"
    assert ds.metadata["matrix"] == matrix
    assert ds.metadata["matrix_kind"] == kind
    assert list(ds.metadata["gene_names"]) == genes
    arrays, ids = _everything(ds)
    assert ids.tolist() == sorted(f"cell{i}" for i in range(N_CELLS))
    order = [int(i[4:]) for i in ids]
    np.testing.assert_allclose(arrays["x"], expected[order], rtol=1e-6)
    assert arrays["x"].dtype == np.float32
    assert ("library_size" in arrays) == (kind == "counts")
    if kind == "counts":
      np.testing.assert_allclose(arrays["library_size"],
                                 counts[order].sum(1))
    assert "label" not in arrays and "num_classes" not in ds.metadata


def test_h5ad_sparse_matrix_is_densified(tmp_path):
  ad, counts, _, _ = _adata(sparse=True)
  path = tmp_path / "sparse.h5ad"
  ad.write_h5ad(path)
  ds = load_dataset(_data(path, matrix="X", matrix_kind="counts",
                          val_fraction=0.0, test_fraction=0.0))
  np.testing.assert_array_equal(ds.split("train")["x"], counts)


def test_h5ad_densify_refused_over_the_memory_bound(tmp_path, monkeypatch):
  # 2000 x 2000 sparse counts: a small file, 16 MB once dense.
  x = scipy.sparse.random(2000, 2000, density=1e-3, format="csr",
                          dtype=np.float32, rng=np.random.default_rng(0))
  path = tmp_path / "sparse.h5ad"
  anndata.AnnData(X=x).write_h5ad(path)
  assert path.stat().st_size < 2**20
  monkeypatch.setattr(h5ad_reader, "memory_limit_bytes", lambda: 2**20)
  message = _raises(DataError, load_dataset,
                    _data(path, matrix="X", matrix_kind="counts"))
  assert message.startswith(f"{path}: matrix X is 2000 x 2000; dense float32 "
                            "it takes 15.3 MiB, more than the 1.0 MiB this "
                            "machine allows for one dataset;")


def test_h5ad_needs_explicit_matrix_and_kind(h5ad):
  path = h5ad[0]
  message = _raises(ConfigError, load_dataset,
                    _data(path, matrix_kind="counts"))
  assert message == (f"--matrix: {path} has X, raw, layers/counts; choose "
                     "one explicitly")
  message = _raises(ConfigError, load_dataset, _data(path, matrix="raw"))
  assert message.startswith(f"--matrix-kind ...: say what {path} matrix raw")
  message = _raises(ConfigError, load_dataset,
                    _data(path, matrix="layers/spliced", matrix_kind="counts"))
  assert "has no such matrix; it has X, raw, layers/counts" in message


def test_h5ad_label_and_batch_encoding(h5ad):
  path = h5ad[0]
  ds = load_dataset(_data(path, matrix="layers/counts", matrix_kind="counts",
                          label_key="cell_type", batch_key="donor"))
  # Category order kept, the unused category dropped; batches sorted.
  assert ds.metadata["class_names"] == ("NK", "T", "B")
  assert ds.num_classes == 3 and ds.metadata["label_key"] == "cell_type"
  assert ds.metadata["batch_names"] == ("d1", "d2")
  arrays, ids = _everything(ds)
  for i, sid in enumerate(ids):
    cell = int(sid[4:])
    assert ds.class_names[arrays["label"][i]] == ["T", "B", "NK"][cell % 3]
    assert ds.metadata["batch_names"][arrays["batch"][i]] == ["d2", "d1"][
        cell % 2]
  assert arrays["label"].dtype == np.int32
  assert arrays["batch"].dtype == np.int32


def test_h5ad_missing_or_continuous_obs_column(h5ad):
  path = h5ad[0]
  message = _raises(DataError, load_dataset,
                    _data(path, matrix="X", matrix_kind="scaled",
                          label_key="celltype"))
  assert message == (f"{path}: obs has no column 'celltype' (--label-key "
                     "celltype); its columns are: cell_type, donor, score")
  message = _raises(DataError, load_dataset,
                    _data(path, matrix="X", matrix_kind="scaled",
                          batch_key="score"))
  assert "column 'score' holds continuous values" in message


@pytest.mark.parametrize("matrix,kind,expected", [
    ("raw", "counts", "matrix raw holds non-integer values (e.g. {v} at cell "
     "0, gene 'raw0'); it is log-normalised, not counts: pass --matrix-kind "
     "log_normalized and use a Gaussian likelihood, or choose a counts matrix"),
    ("X", "counts", "matrix X holds negative values (e.g. {v} at cell 0, "
     "gene 'g{j}'); counts are non-negative integers: it looks scaled: pass "
     "--matrix-kind scaled"),
    ("X", "log_normalized", "matrix X holds negative values (e.g. {v} at "
     "cell 0, gene 'g{j}'); log-normalised values (log1p of normalised "
     "counts) are >= 0: it looks scaled"),
])
def test_matrix_kind_is_checked_by_meaning(h5ad, matrix, kind, expected):
  path, _, log, scaled = h5ad
  if matrix == "raw":
    v, j = log[0, 0], 0
  else:
    j = int(np.argmax(scaled[0] < 0))
    v = scaled[0, j]
  message = _raises(DataError, load_dataset,
                    _data(path, matrix=matrix, matrix_kind=kind))
  assert message.startswith(
      f"{path}: " + expected.format(v=f"{v:.4g}", j=j))


def test_scaled_without_negatives_warns(h5ad, caplog):
  path = h5ad[0]
  with caplog.at_level(logging.WARNING, logger="medgen_jax"):
    ds = load_dataset(_data(path, matrix="raw", matrix_kind="scaled"))
  assert ds.metadata["matrix_kind"] == "scaled"
  assert any("no negative value" in r.getMessage() for r in caplog.records)


def test_non_finite_values_are_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(expression_table, "_BLOCK_ROWS", 2)  # a later block
  ad, _, _, _ = _adata(obs=False)
  x = np.array(ad.layers["counts"])
  x[3, 2] = np.nan
  ad.layers["counts"] = x
  path = tmp_path / "nan.h5ad"
  ad.write_h5ad(path)
  message = _raises(DataError, load_dataset,
                    _data(path, matrix="layers/counts", matrix_kind="counts"))
  assert message.startswith(f"{path}: matrix layers/counts holds nan at cell "
                            "3, gene 'g2'; expression values must be finite")


def test_missing_anndata_is_one_line(h5ad, monkeypatch):
  monkeypatch.setitem(sys.modules, "anndata", None)  # import fails
  message = _raises(ConfigError, load_dataset,
                    _data(h5ad[0], matrix="X", matrix_kind="scaled"))
  assert message == ("reading .h5ad needs anndata: pip install "
                     "'medgen_jax[expression]'")


def test_corrupt_h5ad_names_the_file(tmp_path):
  path = tmp_path / "broken.h5ad"
  path.write_bytes(b"this is not HDF5" * 10)
  message = _raises(DataError, load_dataset,
                    _data(path, matrix="X", matrix_kind="scaled"))
  assert message.startswith(f"{path} is not a readable .h5ad file (")


# --- the split and the genes -------------------------------------------------


def test_stratified_split_is_seeded_disjoint_covering_and_has_every_class():
  labels = np.repeat([0, 1, 2], [30, 7, 3])
  labels = np.random.default_rng(1).permutation(labels)
  parts = expression.split_indices(len(labels), labels, 0.1, 0.2, seed=5)
  again = expression.split_indices(len(labels), labels, 0.1, 0.2, seed=5)
  other = expression.split_indices(len(labels), labels, 0.1, 0.2, seed=6)
  assert list(parts) == ["train", "val", "test"]
  for s in parts:
    np.testing.assert_array_equal(parts[s], again[s])
    assert set(labels[parts[s]]) == {0, 1, 2}, s  # even the 3-sample class
  assert any(not np.array_equal(parts[s], other[s]) for s in parts)
  joined = np.concatenate(list(parts.values()))
  assert sorted(joined.tolist()) == list(range(len(labels)))  # disjoint
  # Class 0 (30 samples): 3 val, 6 test, as the fractions say.
  assert (labels[parts["val"]] == 0).sum() == 3
  assert (labels[parts["test"]] == 0).sum() == 6


def test_split_unlabelled_official_test_and_empty_split():
  parts = expression.split_indices(20, None, 0.25, 0.0, seed=0)
  assert list(parts) == ["train", "val"] and len(parts["val"]) == 5
  parts = expression.split_indices(10, np.array([0, 1] * 5), 0.2, 0.5, 0,
                                   test_rows=np.array([7, 8, 9]))
  np.testing.assert_array_equal(parts["test"], [7, 8, 9])
  assert len(parts["val"]) == 2 and not set(parts["val"]) & {7, 8, 9}
  message = _raises(DataError, expression.split_indices, 20, None, 0.1, 0.01,
                    0)
  assert message.startswith("data.test_fraction=0.01 of 20 samples leaves "
                            "the test split empty; raise data.test_fraction")


def test_max_genes_uses_train_variance_only(tmp_path):
  n = 40
  parts = expression.split_indices(n, None, 0.1, 0.2, seed=0)
  x = np.zeros((n, 3), np.float32)
  x[:, 0] = np.arange(n) % 2  # variance 0.25 everywhere
  x[parts["test"], 1] = 100.0  # constant on train: variance only from test
  x[:, 2] = 0.5 * (np.arange(n) % 2)  # variance 0.0625
  table = expression.Table(x=x, gene_names=("a", "b", "c"),
                           sample_ids=tuple(map(str, range(n))), columns={},
                           column_names={}, source="t", matrix="X")
  assert expression.select_genes(x, 1).tolist() == [1]  # with test rows: b
  opts = expression.read_options(_data("t", max_genes=2, val_fraction=0.1,
                                       test_fraction=0.2), "t")
  ds = expression.assemble("t", table, opts, "scaled")
  assert ds.metadata["gene_names"] == ("a", "c")
  assert ds.split("test")["x"].shape == (len(parts["test"]), 2)
  ties = np.tile(np.array([[0.0], [1.0]], np.float32), (1, 4))
  assert expression.select_genes(ties, 2).tolist() == [0, 1]


# --- .csv --------------------------------------------------------------------


def _write_csv(path, rows):
  with open(path, "w", newline="") as f:
    csv.writer(f).writerows(rows)
  return path


GENES_BY_SAMPLES = [
    ["Description", "Accession", "s1", "call", "s2", "call", "s3", "call",
     "s4", "call"],
    ["a gene", "G1", "1.5", "P", "-2", "A", "3", "P", "4", "M"],
    ["a gene", "G2", "5", "P", "6", "A", "7", "P", "-8.25", "P"],
    ["other, quoted", "G3", "9", "A", "10", "A", "11", "P", "12", "P"],
]


def test_csv_genes_by_samples_with_ignored_columns_and_labels(tmp_path):
  path = _write_csv(tmp_path / "arrays.csv", GENES_BY_SAMPLES)
  labels = _write_csv(tmp_path / "labels.csv",
                      [["id", "diagnosis", "site"], ["s4", "AML", "x"],
                       ["s1", "ALL", "y"], ["s3", "AML", "y"],
                       ["s2", "ALL", "x"], ["s9", "AML", "x"]])
  ds = load_dataset(_data(path, matrix_kind="scaled", val_fraction=0.0,
                          test_fraction=0.0, csv_ignore_columns="call",
                          csv_labels=str(labels), label_key="diagnosis",
                          batch_key="site"))
  train = ds.split("train")
  assert ds.metadata["gene_names"] == ("G1", "G2", "G3")  # unique column
  assert ds.metadata["sample_ids"]["train"] == ("s1", "s2", "s3", "s4")
  np.testing.assert_array_equal(
      train["x"], [[1.5, 5, 9], [-2, 6, 10], [3, 7, 11], [4, -8.25, 12]])
  assert ds.class_names == ("ALL", "AML")
  np.testing.assert_array_equal(train["label"], [0, 0, 1, 1])
  assert ds.metadata["batch_names"] == ("x", "y")
  np.testing.assert_array_equal(train["batch"], [1, 0, 1, 0])


def test_csv_non_numeric_columns_are_named(tmp_path):
  path = _write_csv(tmp_path / "arrays.csv", GENES_BY_SAMPLES)
  message = _raises(DataError, load_dataset, _data(path,
                                                   matrix_kind="scaled"))
  assert message == (
      f"{path}: column(s) 'call' (4 columns) are not numeric (e.g. 'P' at "
      "line 2); skip them with --set data.csv_ignore_columns='call' or fix "
      "the file")
  # Patterns work too; skipping the accessions leaves descriptions, which
  # repeat, so they still name the genes (the last identifier column).
  ds = load_dataset(_data(path, matrix_kind="scaled", val_fraction=0.0,
                          test_fraction=0.0,
                          csv_ignore_columns="c?ll, Accession"))
  assert ds.metadata["gene_names"] == ("a gene", "a gene", "other, quoted")


def test_csv_samples_by_genes_with_label_column(tmp_path):
  rows = [["id", "group", "TP53", "EGFR"]]
  rows += [[f"p{i}", "case" if i % 2 else "control", str(i + 1), str(2 * i)]
           for i in range(10)]
  path = _write_csv(tmp_path / "table.csv", rows)
  ds = load_dataset(_data(path, matrix_kind="counts",
                          csv_orientation="samples_by_genes",
                          label_key="group", val_fraction=0.2,
                          test_fraction=0.2))
  assert ds.metadata["gene_names"] == ("TP53", "EGFR")
  assert ds.class_names == ("case", "control")
  arrays, ids = _everything(ds)
  order = sorted(range(10), key=lambda i: f"p{i}")
  np.testing.assert_array_equal(arrays["x"][:, 0], np.add(order, 1))
  np.testing.assert_array_equal(arrays["library_size"], np.multiply(order, 3)
                                + 1)
  np.testing.assert_array_equal(arrays["label"], [1 - i % 2 for i in order])
  for s in ("train", "val", "test"):
    assert set(ds.split(s)["label"]) == {0, 1}
  assert ds.metadata["matrix_kind"] == "counts"
  message = _raises(ConfigError, load_dataset,
                    _data(path, matrix_kind="scaled",
                          csv_orientation="samples_by_genes",
                          label_key="diagnosis"))
  assert "--label-key diagnosis is not a column of" in message


def test_csv_empty_library_and_nan_cells(tmp_path):
  rows = [["gene", "s1", "s2"], ["A", "0", "3"], ["B", "0", "1"]]
  path = _write_csv(tmp_path / "counts.csv", rows)
  message = _raises(DataError, load_dataset,
                    _data(path, matrix_kind="counts", val_fraction=0.0,
                          test_fraction=0.0))
  assert "sample 0 ('s1') has no counts in matrix X" in message
  rows = [["gene", "s1", "s2"], ["A", "1", "3"], ["B", "", "1"]]
  path = _write_csv(tmp_path / "nan.csv", rows)
  message = _raises(DataError, load_dataset, _data(path,
                                                   matrix_kind="counts"))
  assert message == (f"{path}: line 3 ('B'), column 's1' has no value; "
                     "every value must be a finite number: fill it in, or "
                     "drop that row or column")
  (tmp_path / "trailing.csv").write_text("gene,s1,s2,\nA,1,2,\nB,3,4,\n")
  ds = load_dataset(_data(tmp_path / "trailing.csv", matrix_kind="counts",
                          val_fraction=0.0, test_fraction=0.0))
  np.testing.assert_array_equal(ds.split("train")["x"], [[1, 3], [2, 4]])
  rows = [["gene", "s1", "s2"], ["A", "1", "NA"], ["B", "2", "1"]]
  path = _write_csv(tmp_path / "na.csv", rows)
  message = _raises(DataError, load_dataset, _data(path,
                                                   matrix_kind="counts"))
  assert "line 2 ('A'), column 's2' has no value ('NA')" in message


def test_csv_label_file_must_cover_the_samples(tmp_path):
  path = _write_csv(tmp_path / "arrays.csv", GENES_BY_SAMPLES)
  labels = _write_csv(tmp_path / "labels.csv",
                      [["id", "diagnosis"], ["s1", "ALL"], ["s2", "AML"]])
  data = _data(path, matrix_kind="scaled", csv_ignore_columns="call",
               csv_labels=str(labels), label_key="diagnosis")
  message = _raises(DataError, load_dataset, data)
  assert message == (f"{labels} has no line for 2 sample(s) of {path} (e.g. "
                     "'s3', 's4'); its first column ('id') must hold the "
                     "sample ids")
  data.csv_labels = ""
  message = _raises(ConfigError, load_dataset, data)
  assert "needs a label file" in message and "data.csv_labels" in message


# --- dispatch, registered datasets, config -----------------------------------


def test_path_dispatch(tmp_path):
  names = dataset_names()
  assert "PATH.csv" in names and "PATH.h5ad" in names
  assert "pbmc68k_reduced" in names and "golub_leukemia" in names
  txt = tmp_path / "table.txt"
  txt.write_text("gene,s1\nA,1\n")
  message = _raises(DataError, load_dataset, _data(txt))
  # The VAE also reads CT/MR files (.dcm, .nii, .nii.gz) as images.
  assert message == (f"{txt}: unknown file type '.txt'; --data PATH reads "
                     "files ending in .csv, .dcm, .h5ad, .nii, .nii.gz")
  missing = tmp_path / "nowhere.h5ad"
  message = _raises(DataError, load_dataset, _data(missing))
  assert message.startswith(f"{missing}: no such file; --data takes a "
                            "dataset name")
  _raises(DataError, load_dataset, _data(tmp_path))  # a folder
  with pytest.raises(UnknownNameError):
    load_dataset(_data("pbmc68k"))


def test_registered_datasets_need_data_dir_and_expression_options(tmp_path):
  message = _raises(ConfigError, load_dataset, _data("pbmc68k_reduced"))
  assert message.startswith("dataset 'pbmc68k_reduced' needs --data-dir, the "
                            "folder holding 10x_pbmc68k_reduced.h5ad;")
  assert "no download" in message
  message = _raises(DataError, load_dataset,
                    _data("golub_leukemia", data_dir=str(tmp_path)))
  assert "data_set_ALL_AML_train.csv not found" in message
  from medgen_jax.configs import gan
  data = gan.get_config().data
  data.name = "pbmc68k_reduced"
  message = _raises(ConfigError, load_dataset, data)
  assert "is an expression dataset and needs data.matrix" in message


def test_config_validation():
  data = _data("x")
  validate_expression_data_options(data)
  for field, value, text in (
      ("matrix_kind", "log", "--matrix-kind 'log': expected one of"),
      ("matrix", "obsm/X_pca", "--matrix 'obsm/X_pca': expected X, raw"),
      ("test_fraction", 0.95, "leaves no training samples"),
      ("csv_orientation", "rows", "data.csv_orientation 'rows'"),
      ("max_genes", -1, "data.max_genes must be >= 0")):
    bad = _data("x", **{field: value})
    assert text in _raises(ConfigError, validate_expression_data_options, bad)


def test_modality_check_refuses_inconsistent_datasets():
  x = np.ones((4, 3), np.float32)
  ds = Dataset("d", {"train": Split({"x": x})}, "src", "expression",
               {"gene_names": ("a", "b"), "matrix_kind": "scaled"})
  assert "has 2 gene names for 3 genes" in _raises(DataError, check_dataset,
                                                  ds)
  ds = Dataset("d", {"train": Split({"x": x * 0.5})}, "src", "expression",
               {"gene_names": ("a", "b", "c"), "matrix_kind": "counts"})
  assert "negative or non-integer" in _raises(DataError, check_dataset, ds)


# --- the real shared files ---------------------------------------------------


def test_pbmc68k_reduced(shared_data_dir):
  folder = shared_data_dir / "pbmc68k_reduced"
  ds = load_dataset(_data("pbmc68k_reduced", data_dir=str(folder)))
  assert sum(len(s) for s in ds.splits.values()) == 700
  assert ds.example_shape("x") == (765,)
  assert ds.metadata["matrix"] == "raw"
  assert ds.metadata["matrix_kind"] == "log_normalized"
  assert ds.num_classes == 10 and "Dendritic" in ds.class_names
  for s in ("train", "val", "test"):
    assert len(set(ds.split(s)["label"].tolist())) == 10
  message = _raises(DataError, load_dataset,
                    _data("pbmc68k_reduced", data_dir=str(folder),
                          matrix_kind="counts"))
  assert message.startswith(f"{folder / expression_datasets.PBMC_FILE}: "
                            "matrix raw "
                            "holds non-integer values (e.g. ")
  assert message.endswith("it is log-normalised, not counts: pass "
                          "--matrix-kind log_normalized and use a Gaussian "
                          "likelihood, or choose a counts matrix")


def test_golub_leukemia(shared_data_dir):
  folder = shared_data_dir / "golub_leukemia"
  # The raw values: the dataset's default transforms switched off (they are
  # tested in test_expression_transforms.py).
  ds = load_dataset(_data("golub_leukemia", data_dir=str(folder),
                          log_floor=0.0, standardize=False))
  assert ds.metadata["transform"] == "none"
  ids = ds.metadata["sample_ids"]
  assert len(ds.split("train")) + len(ds.split("val")) == 38
  assert len(ds.split("test")) == 34
  assert sorted(map(int, ids["train"] + ids["val"])) == list(range(1, 39))
  assert sorted(map(int, ids["test"])) == list(range(39, 73))
  assert ds.example_shape("x") == (7129,)
  assert ds.metadata["gene_names"][0] == "AFFX-BioB-5_at"
  assert ds.metadata["matrix_kind"] == "scaled"
  assert ds.class_names == ("ALL", "AML")
  # From actual.csv by hand: 1 ALL, 27 ALL, 28 AML, 38 AML (train files);
  # 50 AML, 55 ALL, 57 AML, 67 ALL (independent file).
  expected = {"1": "ALL", "27": "ALL", "28": "AML", "38": "AML",
              "50": "AML", "55": "ALL", "57": "AML", "67": "ALL"}
  # And the first probe's value (AFFX-BioB-5_at) of a few patients.
  first = {"1": -214, "28": -4, "34": -20, "39": -342, "62": -176}
  seen = set()
  for s, split in ds.splits.items():
    for i, pid in enumerate(ids[s]):
      if pid in expected:
        assert ds.class_names[split["label"][i]] == expected[pid], pid
        seen.add(pid)
      if pid in first:
        assert split["x"][i, 0] == first[pid], pid
        seen.add(pid)
  assert seen == set(expected) | set(first)
  labels = np.concatenate([ds.split(s)["label"] for s in ds.splits])
  assert np.bincount(labels).tolist() == [47, 25]
