"""The classifier family: its cross-entropy matches a hand computation, it
learns the phantoms' lesion label, TSTR scores the real test split, the
extractor hash round-trips, features are deterministic, 3-D builds."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from medgen_jax.configs import classifier as classifier_config
from medgen_jax.data.phantoms import generate_phantoms
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.families.classifier import step as cls_step
from medgen_jax.families.classifier import (ClassifierTask, extract_features,
                                            params_hash)
from medgen_jax.models.classifier import ImageClassifier
from medgen_jax.objectives import classification as cls_lib
from medgen_jax.outputs import save_npz
from medgen_jax.train.loop import load_run, train_and_evaluate

STEPS = 200  # min held-out accuracy over seeds 0-3 was 0.92
NUM_TEST = 64


def _config(**fields):
  c = classifier_config.get_config()
  c.data.image_size = 16
  c.data.phantoms.num_train = 512
  c.data.phantoms.num_val = 64
  c.data.phantoms.num_test = NUM_TEST
  c.classifier.width = 8
  c.classifier.feature_dim = 16
  c.classifier.dropout = 0.1
  c.classifier.weight_decay = 1e-4
  c.optimizer.learning_rate = 3e-3
  c.train.batch_size = 32
  c.train.steps = STEPS
  c.train.log_every = 50
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
  c.train.num_devices = 1
  c.train.progress = False
  for path, value in fields.items():
    node, leaf = c, path
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory):
  """One short phantom run whose train step may be traced only once."""
  workdir = tmp_path_factory.mktemp("classifier") / "run"
  make = cls_step.make_train_step
  chex.clear_trace_counter()
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(cls_step, "make_train_step",
               lambda *a: chex.assert_max_traces(make(*a), n=1))
    out = train_and_evaluate(_config(), workdir)
  return out, workdir


# -- objective ---------------------------------------------------------------


def test_cross_entropy_equals_a_hand_computation():
  logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
  labels = np.array([0, 1])
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  hand = -log_p[np.arange(2), labels]
  got = cls_lib.cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
  np.testing.assert_allclose(got, hand, rtol=1e-6)
  # Smoothing eps: target (1 - eps) one-hot + eps / K.
  eps = 0.3
  smooth = -((1 - eps) * log_p[np.arange(2), labels]
             + eps / 3 * log_p.sum(1))
  got = cls_lib.cross_entropy(jnp.asarray(logits), jnp.asarray(labels), eps)
  np.testing.assert_allclose(got, smooth, rtol=1e-6)
  assert got.shape == (2,)
  np.testing.assert_array_equal(
      cls_lib.accuracy(jnp.asarray(logits), jnp.asarray(labels)), [1.0, 0.0])


def test_balanced_accuracy_weights_classes_equally():
  labels = np.array([0, 0, 0, 0, 1])
  predicted = np.array([0, 0, 0, 0, 0])
  np.testing.assert_allclose(cls_lib.per_class_recall(predicted, labels, 3),
                             [1.0, 0.0, np.nan])
  assert cls_lib.balanced_accuracy(predicted, labels, 3) == 0.5


# -- training ----------------------------------------------------------------


def test_learns_the_lesion_label(phantom_run):
  out, _ = phantom_run
  last = out["last_metrics"]
  assert last["eval/val_accuracy"] > 0.8
  assert last["eval/val_examples"] == 64
  # The last evaluation also scores the test split.
  assert last["eval/test_accuracy"] > 0.8
  assert last["eval/test_examples"] == NUM_TEST
  assert last["eval/test_balanced_accuracy"] > 0.8
  assert {"eval/test_recall_0", "eval/test_recall_1"} <= set(last)
  assert 0 < last["eval/test_cross_entropy"] < np.log(2)
  assert last["l2"] > 0  # weight decay is in the loss


def test_extractor_hash_round_trips_and_changes(phantom_run):
  _, workdir = phantom_run
  run = load_run(workdir)
  h = run.metadata["extractor_hash"]
  assert len(h) == 16 and all(ch in "0123456789abcdef" for ch in h)
  assert run.task.extractor_hash == h == params_hash(run.state.params)
  earlier = load_run(workdir, step=STEPS // 2)
  assert earlier.metadata["extractor_hash"] != h
  assert earlier.metadata["extractor_hash"] == params_hash(earlier.state.params)


def test_extract_features_and_embed(phantom_run):
  _, workdir = phantom_run
  run = load_run(workdir)
  test = load_dataset(run.config.data).split("test")
  images = test["image"][:37]
  a, b = extract_features(run, images), extract_features(run, images)
  assert a.shape == (37, 16) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  # Batched in padded chunks: the same features one by one.
  np.testing.assert_allclose(extract_features(run, images[:1]), a[:1],
                             rtol=1e-5, atol=1e-6)
  with pytest.raises(DataError, match="uint8"):
    extract_features(run, images.astype(np.float32))
  emb = run.task.embed(run.state, test)
  assert emb["z"].shape == (NUM_TEST, 16)
  assert emb["logits"].shape == (NUM_TEST, 2)
  np.testing.assert_array_equal(emb["label"], test["label"])
  with pytest.raises(ConfigError, match="does not generate"):
    run.task.generate(run.state, jax.random.key(0), 2, {})


# -- train on synthetic, test on real ----------------------------------------


def test_tstr_scores_the_real_test_split(tmp_path):
  images, labels = generate_phantoms(192, 16, np.random.default_rng(7),
                                     blur_sigma=0.5, noise_std=0.02)
  path = tmp_path / "samples.npz"
  save_npz(path, {"image": np.round(images[..., None] * 255).astype(np.uint8),
                  "label": labels.astype(np.int32)})
  c = _config(**{"data.name": str(path), "data.eval_name": "phantoms",
                 "train.steps": 20, "train.eval_every": 20,
                 "train.checkpoint_every": 20, "train.log_every": 20})
  out = train_and_evaluate(c, tmp_path / "run")
  last = out["last_metrics"]
  assert last["eval/test_examples"] == NUM_TEST  # phantoms' test split
  assert not any(k.startswith("eval/val_") for k in last)
  assert c.classifier.num_classes == 2


def test_samples_file_without_eval_data_is_refused(tmp_path):
  path = tmp_path / "s.npz"
  save_npz(path, {"image": np.zeros((8, 16, 16, 1), np.uint8),
                  "label": np.arange(8) % 2})
  c = _config(**{"data.name": str(path)})
  with pytest.raises(DataError, match="--eval-data"):
    ClassifierTask(c, load_dataset(c.data))


def test_eval_data_must_match_shape_and_classes(tmp_path):
  path = tmp_path / "s.npz"
  c = _config(**{"data.name": str(path), "data.eval_name": "phantoms",
                 "data.phantoms.num_test": 8,
                 "data.phantoms.num_train": 8})
  # RGB samples beside grayscale phantoms.
  save_npz(path, {"image": np.zeros((8, 16, 16, 3), np.uint8),
                  "label": np.arange(8) % 2})
  with pytest.raises(DataError, match="shape"):
    ClassifierTask(c, load_dataset(c.data))
  # Three classes beside the phantoms' two.
  save_npz(path, {"image": np.zeros((9, 16, 16, 1), np.uint8),
                  "label": np.arange(9) % 3})
  with pytest.raises(DataError, match="classes"):
    ClassifierTask(c, load_dataset(c.data))


# -- 3-D ---------------------------------------------------------


def test_builds_on_volumes():
  model = ImageClassifier(num_classes=3, width=4, ndim=3, feature_dim=8)
  x = jax.ShapeDtypeStruct((2, 8, 8, 8, 1), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), x)
  assert params["params"]["down0"]["kernel"].shape == (4, 4, 4, 4, 4)
  logits = jax.eval_shape(model.apply, params, x)
  features = jax.eval_shape(
      lambda p, v: model.apply(p, v, method=ImageClassifier.features),
      params, x)
  assert logits.shape == (2, 3) and features.shape == (2, 8)
