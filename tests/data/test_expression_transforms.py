"""Transforms of real-valued expression matrices: data.log_floor and
data.standardize (per-gene z-scores with train-split statistics)."""

import numpy as np
import pytest

from medgen_jax.configs.expression import validate_expression_data_options
from medgen_jax.data import expression
from medgen_jax.data.base import Dataset, Split, check_dataset
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError, DataError
from test_expression import _data, _raises


def _table(x, genes=None):
  x = np.asarray(x, np.float32)
  genes = genes or tuple(f"g{j}" for j in range(x.shape[1]))
  return expression.Table(x=x, gene_names=tuple(genes),
                          sample_ids=tuple(f"s{i}" for i in range(len(x))),
                          columns={}, column_names={}, source="t.csv",
                          matrix="X")


def _assemble(x, kind="scaled", test_rows=None, genes=None, **fields):
  """assemble() of table x with val_fraction = test_fraction = 0 unless
  `fields` says otherwise; `test_rows` is an official test set."""
  fields = {"val_fraction": 0.0, "test_fraction": 0.0, **fields}
  opts = expression.read_options(_data("t", **fields), "t")
  return expression.assemble("t", _table(x, genes), opts, kind,
                             test_rows=test_rows)


def test_defaults_are_off_for_a_file():
  x = [[-3.0, 2.0], [5.0, 7.0]]
  ds = _assemble(x)
  np.testing.assert_array_equal(ds.split("train")["x"], x)
  assert ds.metadata["transform"] == "none"
  assert "gene_mean" not in ds.metadata and "gene_std" not in ds.metadata


def test_log_floor_by_hand():
  ds = _assemble([[-5.0, 1.0], [8.0, 40.0], [20.0, 4.0]], log_floor=4.0)
  # log2(max(x, 4)): -5, 1 and 4 are floored to 4 -> 2.
  np.testing.assert_allclose(ds.split("train")["x"],
                             [[2.0, 2.0], [3.0, np.log2(40.0)],
                              [np.log2(20.0), 2.0]], rtol=1e-6)
  assert ds.split("train")["x"].dtype == np.float32
  assert ds.metadata["transform"] == "log2(max(x, 4))"
  assert "gene_mean" not in ds.metadata


def test_standardize_uses_train_statistics_only():
  # Rows 0-2 train, row 3 the (official) test set.
  x = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [100.0, 7.0]])
  ds = _assemble(x, test_rows=np.array([3]), standardize=True)
  # Gene 0: train mean 2, std sqrt(2/3) (ddof 0); over all rows the mean
  # would be 26.5. Gene 1 is constant on train: mean 5, std 1.
  assert x[:, 0].mean() == 26.5
  s = np.sqrt(2.0 / 3.0)
  np.testing.assert_allclose(ds.metadata["gene_mean"], [2.0, 5.0])
  np.testing.assert_allclose(ds.metadata["gene_std"], [s, 1.0], rtol=1e-6)
  np.testing.assert_allclose(ds.split("train")["x"],
                             [[-1 / s, 0.0], [0.0, 0.0], [1 / s, 0.0]],
                             rtol=1e-6)
  np.testing.assert_allclose(ds.split("test")["x"], [[98 / s, 2.0]],
                             rtol=1e-6)
  assert ds.split("test")["x"].dtype == np.float32
  assert ds.metadata["transform"] == "z-score by train genes"


def test_log_then_select_genes_then_standardize():
  # Raw variance favours gene "p" (1000..4000); on the log2 scale gene "q"
  # (1..256, log2 0..8) varies more. --max-genes ranks genes after the log
  # and before the z-score (after it every gene has variance 1, a tie that
  # would go to the first gene, "p").
  x = np.array([[1000.0, 1.0], [2000.0, 16.0], [4000.0, 256.0]])
  ds = _assemble(x, genes=("p", "q"), log_floor=1.0, standardize=True,
                 max_genes=1)
  assert ds.metadata["gene_names"] == ("q",)
  logged = np.array([0.0, 4.0, 8.0])
  z = (logged - 4.0) / logged.std()
  np.testing.assert_allclose(ds.split("train")["x"][:, 0], z, rtol=1e-6)
  np.testing.assert_allclose(ds.metadata["gene_mean"], [4.0])
  assert ds.metadata["transform"] == ("log2(max(x, 1)), z-score by train "
                                      "genes")
  check_dataset(ds)


def test_transforms_refuse_counts():
  counts = [[1.0, 2.0], [3.0, 4.0]]
  message = _raises(ConfigError,
                    lambda: _assemble(counts, "counts", log_floor=20.0))
  assert message.startswith("--set data.log_floor=20 would transform the "
                            "values, but --matrix-kind counts keeps raw "
                            "counts for a count likelihood;")
  with pytest.raises(ConfigError, match="data.standardize=true would"):
    _assemble(counts, "counts", standardize=True)
  # Caught by the config check too, before any file is read.
  bad = _data("x", matrix_kind="counts", standardize=True)
  assert "keeps raw counts" in _raises(ConfigError,
                                       validate_expression_data_options, bad)
  # Off (0 / false) is fine with counts.
  ds = _assemble(counts, "counts", log_floor=0.0, standardize=False)
  assert ds.metadata["transform"] == "none"


def test_config_validation_of_the_transforms():
  validate_expression_data_options(_data("x", log_floor=20.0,
                                         standardize=True))
  message = _raises(ConfigError, validate_expression_data_options,
                    _data("x", log_floor=-1.0))
  assert message.startswith("data.log_floor must be a finite number in [0, ")
  data = _data("x")
  assert data.log_floor is None and data.standardize is None


def test_modality_check_refuses_statistics_of_another_shape():
  ds = Dataset("d", {"train": Split({"x": np.zeros((4, 3), np.float32)})},
               "src", "expression",
               {"gene_names": ("a", "b", "c"), "matrix_kind": "scaled",
                "gene_mean": np.zeros(2, np.float32)})
  message = _raises(DataError, check_dataset, ds)
  assert "metadata gene_mean of shape (2,) for 3 genes" in message


# --- the real Golub files ----------------------------------------------------


def test_golub_defaults_to_log_floor_and_train_z_scores(shared_data_dir):
  folder = str(shared_data_dir / "golub_leukemia")
  ds = load_dataset(_data("golub_leukemia", data_dir=folder))
  raw = load_dataset(_data("golub_leukemia", data_dir=folder,
                           log_floor=0.0, standardize=False))
  assert ds.metadata["transform"] == ("log2(max(x, 20)), z-score by train "
                                      "genes")
  assert raw.metadata["transform"] == "none"
  assert ds.metadata["sample_ids"] == raw.metadata["sample_ids"]
  train = ds.split("train")["x"]
  assert np.isfinite(train).all()
  # Train genes: mean 0, std 1, except those constant on train (all <= 20
  # there, so floored to one value): exactly 0.
  constant = (train == train[:1]).all(axis=0)
  assert 0 < constant.sum() < train.shape[1]
  # Genes whose std is at least the floor (a tenth of the median std of the
  # varying genes) have std 1; the nearly constant ones less.
  # (float32 z-scores: a gene with a small std magnifies rounding.)
  np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-4)
  logged = {s: np.log2(np.maximum(raw.split(s)["x"].astype(np.float64), 20))
            for s in raw.splits}
  mean, std = logged["train"].mean(0), logged["train"].std(0)
  floor = 0.1 * np.median(std[~constant])
  varying = ~constant & (std >= floor)
  assert 0 < (~constant & ~varying).sum() < 100  # a few dozen are floored
  np.testing.assert_allclose(train[:, varying].std(axis=0), 1.0, rtol=1e-4)
  assert (train[:, ~constant].std(axis=0) <= 1.0 + 1e-4).all()
  assert (train[:, constant] == 0).all()
  # Held-out values stay on a sane scale (no z-score of 300 from a probe at
  # the floor in all but one training sample).
  assert np.abs(ds.split("test")["x"]).max() < 50
  # By hand from the raw values: statistics of the train split only, the
  # same for every split.
  std = np.maximum(std, floor)
  mean[constant], std[constant] = logged["train"][0, constant], 1.0
  np.testing.assert_allclose(ds.metadata["gene_mean"], mean, rtol=1e-5)
  np.testing.assert_allclose(ds.metadata["gene_std"], std, rtol=1e-5)
  for s in ("train", "val", "test"):
    np.testing.assert_allclose(ds.split(s)["x"], (logged[s] - mean) / std,
                               rtol=1e-4, atol=1e-4)
  assert ds.metadata["gene_mean"].shape == (7129,)
  # A user's setting overrides each default on its own.
  only_log = load_dataset(_data("golub_leukemia", data_dir=folder,
                                standardize=False))
  assert only_log.metadata["transform"] == "log2(max(x, 20))"
  np.testing.assert_allclose(only_log.split("test")["x"], logged["test"],
                             rtol=1e-6)
