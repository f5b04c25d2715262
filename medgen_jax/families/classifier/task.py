"""ClassifierTask: an image classifier as the loop, the CLI and the
evaluation code see it (the domain feature extractor, and TSTR)."""

from __future__ import annotations

import copy
import hashlib
import logging
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import classifier as classifier_config
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.configs.images import VOLUME_FLAGS
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import IndexSampler, uint8_to_unit_range
from medgen_jax.data.registry import load_dataset
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.families import _image_report
from medgen_jax.families._images import check_image_data
# Imported for its registration of `--data FILE.npz` (generated samples).
from medgen_jax.families.classifier import step as cls_step
from medgen_jax.models.classifier import NORMS, ImageClassifier
from medgen_jax.objectives import classification as cls_lib
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import (TASKS, BaseTask, Flag, Outputs, Report,
                                   ReportContext, held_out_view)
from medgen_jax.train.update import make_gradient_fn

log = logging.getLogger("medgen_jax")

CHUNK = 256        # images per compiled prediction call (padded)
HASH_CHARS = 16    # hex characters of the extractor hash


def params_hash(params) -> str:
  """Content hash of parameters: sha256 of the float32 bytes of the leaves
  in tree order, first HASH_CHARS hex characters."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(params)):
    h.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
  return h.hexdigest()[:HASH_CHARS]


@TASKS.register("classifier")
class ClassifierTask(BaseTask):
  """A small CNN classifier of a dataset's labels (configs/classifier.py)."""

  get_config = staticmethod(classifier_config.get_config)
  flags = (
      Flag("--image-size", "data.image_size", "images: height = width"),
      Flag("--width", "classifier.width", "channels of the first conv stage"),
      Flag("--feature-dim", "classifier.feature_dim",
           "size of the penultimate features (the extractor's output)"),
      Flag("--label-smoothing", "classifier.label_smoothing",
           "eps of the smoothed cross-entropy targets"),
      Flag("--dropout", "classifier.dropout", "dropout before the logits"),
      Flag("--weight-decay", "classifier.weight_decay", "L2 on the kernels"),
      Flag("--blur-augment", "classifier.blur",
           "blur each training image by a Gaussian of std U(0, S) pixels"),
      Flag("--eval-data", "data.eval_name",
           "score on this dataset's test split (train on synthetic, test on "
           "real); default: the training data's own val/test splits"),
      *(Flag(*f) for f in VOLUME_FLAGS),
  )
  data_keys = ("image", "label")
  resumable_fields = ("classifier.eval_examples",)

  @classmethod
  def validate_config(cls, config) -> None:
    k = config.classifier
    check_int(k.width, "classifier.width (--width)", 1, 4097)
    check_int(k.feature_dim, "classifier.feature_dim (--feature-dim)", 1, 65537)
    if k.norm not in NORMS:
      raise ConfigError(f"classifier.norm {k.norm!r}; expected one of "
                        f"{', '.join(NORMS)}")
    check_real(k.dropout, "classifier.dropout (--dropout)", 0.0, 1.0,
               hi_open=True)
    check_real(k.label_smoothing,
               "classifier.label_smoothing (--label-smoothing)", 0.0, 1.0,
               hi_open=True)
    check_real(k.weight_decay, "classifier.weight_decay (--weight-decay)", 0.0)
    check_real(k.blur, "classifier.blur (--blur-augment)", 0.0, 8.0)
    check_int(k.eval_examples, "classifier.eval_examples", 0)
    if not isinstance(config.data.get("eval_name", ""), str):
      raise ConfigError("data.eval_name (--eval-data) must be a dataset name")

  def __init__(self, config, dataset: Dataset | None = None):
    k = config.classifier
    self._eval_dataset: Dataset | None = None
    if dataset is not None:
      self._eval_dataset = self._resolve(config, dataset)
    for key in ("data_shape", "num_classes", "class_names"):
      if k[key] is None:
        raise ConfigError(
            f"classifier.{key} is not set; it is derived from the data when a "
            "run starts, so build the task from a run's config.json or with a "
            "dataset")
    self.config = config
    self.data_shape = tuple(int(d) for d in k.data_shape)
    self.num_classes = int(k.num_classes)
    self.model = ImageClassifier(
        num_classes=self.num_classes, width=k.width,
        ndim=len(self.data_shape) - 1, feature_dim=k.feature_dim,
        norm=k.norm, dropout=k.dropout)
    self.step_cfg = cls_step.ClassifierStepConfig(
        model=self.model, label_smoothing=k.label_smoothing,
        weight_decay=k.weight_decay, blur=float(k.blur))
    self.train_step = cls_step.make_train_step(self.step_cfg,
                                               make_gradient_fn(config))
    self._predict = jax.jit(cls_step.make_predict(self.step_cfg))
    self.extractor_hash: str | None = None  # set by restore_metadata

  # -- resolving the config against the data ---------------------------------
  @staticmethod
  def _resolve(config, dataset: Dataset) -> Dataset | None:
    """Checks the data, sets the derived fields; returns the --eval-data
    dataset (None without one)."""
    k, d = config.classifier, config.data
    shape = dataset.example_shape("image")  # [h, w, c] or [x, y, z, c]
    ndim, _ = check_image_data(dataset, d)
    flag = "--volume" if ndim == 3 else "--image-size"
    names = dataset.class_names or tuple(
        str(i) for i in range(int(dataset.split("train")["label"].max()) + 1))
    if len(names) < 2:
      raise DataError(f"{dataset.source}: dataset {dataset.name!r} has "
                      f"{len(names)} class; a classifier needs at least 2")
    eval_ds = None
    if d.eval_name:
      eval_ds = _load_eval_dataset(d)
      where = f"--eval-data {d.eval_name}"
      if "test" not in eval_ds.splits:
        raise DataError(f"{eval_ds.source}: {where} has no 'test' split "
                        f"(it has {sorted(eval_ds.splits)}); choose a dataset "
                        "with a test split")
      if "image" not in eval_ds.keys or "label" not in eval_ds.keys:
        raise DataError(f"{eval_ds.source}: {where} has arrays "
                        f"{list(eval_ds.keys)}; expected 'image' and 'label'")
      eval_shape = tuple(
          int(s) for s in eval_ds.split("test")["image"].shape[1:])
      if eval_shape != tuple(shape):
        raise DataError(
            f"{where}: its images are {eval_shape} but the training images "
            f"({dataset.source}) are {tuple(shape)}; use data of one shape "
            f"(e.g. the same {flag})")
      if eval_ds.num_classes != len(names):
        raise DataError(
            f"{where} has {eval_ds.num_classes} classes but the training data "
            f"({dataset.source}) has {len(names)}; TSTR needs the same classes")
    elif not ({"val", "test"} & set(dataset.splits)):
      raise DataError(
          f"{dataset.source}: dataset {dataset.name!r} has only the splits "
          f"{sorted(dataset.splits)}; the classifier scores a held-out 'val' "
          "or 'test' split, so pass --eval-data NAME (e.g. the real dataset "
          "generated samples imitate)")
    k.data_shape = tuple(int(s) for s in shape)
    k.num_classes = len(names)
    k.class_names = tuple(str(n) for n in names)
    if ndim == 3:
      d.voxel_spacing = dataset.metadata.get("voxel_spacing")
    return eval_ds

  # -- state and data ----------------------------------------------------------
  def init_state(self, key: jax.Array) -> TrainState:
    params = self.model.init(key, jnp.zeros((2,) + self.data_shape))["params"]
    return TrainState.create(
        apply_fn=self.model.apply, params=params,
        tx=make_optimizer(self.config.optimizer,
                          self.config.optimizer.learning_rate,
                          self.config.train.steps))

  def to_batch(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dataset arrays of some examples -> the step's batch schema."""
    return {"image": uint8_to_unit_range(np.asarray(arrays["image"])),
            "label": np.asarray(arrays["label"], np.int32)}

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return self.to_batch(split.take(sampler.indices(step)))

  # -- predictions -----------------------------------------------------------
  def _check_images(self, images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == len(self.data_shape) and self.data_shape[-1] == 1:
      images = images[..., None]  # [n, *spatial] grayscale
    if images.dtype != np.uint8 or images.shape[1:] != self.data_shape:
      raise DataError(
          f"{what}: got {images.dtype} images of shape {images.shape}; this "
          "classifier takes uint8 images "
          f"[n, {', '.join(map(str, self.data_shape))}]")
    return images

  def predict_arrays(self, state, images_uint8: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, F] float32, logits [n, K] float32) of uint8 images, in
    padded chunks of CHUNK (one compiled program for any n)."""
    images = self._check_images(images_uint8, "classifier input")
    n, feats, logits = len(images), [], []
    for start in range(0, n, CHUNK):
      x = uint8_to_unit_range(images[start:start + CHUNK])
      m = len(x)
      if m < CHUNK:
        x = np.concatenate([x, np.zeros((CHUNK - m,) + x.shape[1:], x.dtype)])
      f, lg = jax.device_get(self._predict(state.params, x))
      feats.append(np.asarray(f, np.float32)[:m])
      logits.append(np.asarray(lg, np.float32)[:m])
    if not n:
      return (np.zeros((0, self.config.classifier.feature_dim), np.float32),
              np.zeros((0, self.num_classes), np.float32))
    return np.concatenate(feats), np.concatenate(logits)

  # -- evaluation --------------------------------------------------------------
  def _held_out_splits(self, dataset: Dataset, step: int
                       ) -> list[tuple[str, Split]]:
    if self.config.data.eval_name:
      if self._eval_dataset is None:
        self._eval_dataset = _load_eval_dataset(self.config.data)
      return [("test", self._eval_dataset.split("test"))]
    names = [s for s in ("val",) if s in dataset.splits]
    if "test" in dataset.splits and (step >= self.config.train.steps
                                     or not names):
      names.append("test")
    return [(s, dataset.split(s)) for s in names]

  def scores(self, state, split: Split) -> dict[str, float]:
    """Accuracy, balanced accuracy, per-class recall, mean cross-entropy and
    the number of examples scored, on (a fixed subset of) `split`."""
    n = len(split)
    limit = self.config.classifier.eval_examples
    idx = np.arange(n)
    if limit and limit < n:
      idx = np.sort(np.random.default_rng(0).permutation(n)[:limit])
    arrays = split.take(idx)
    labels = np.asarray(arrays["label"], np.int32)
    _, logits = self.predict_arrays(state, arrays["image"])
    ce = np.asarray(cls_lib.cross_entropy(jnp.asarray(logits),
                                          jnp.asarray(labels)))
    predicted = logits.argmax(-1)
    recall = cls_lib.per_class_recall(predicted, labels, self.num_classes)
    out = {"accuracy": float(np.mean(predicted == labels)),
           "balanced_accuracy": float(np.nanmean(recall)),
           "cross_entropy": float(ce.mean()),
           "examples": float(len(labels))}
    for c, r in enumerate(recall):
      if np.isfinite(r):
        out[f"recall_{c}"] = float(r)
    return out

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    out = Outputs()
    for name, split in self._held_out_splits(dataset, step):
      out.scalars.update({f"eval/{name}_{k}": v
                          for k, v in self.scores(state, split).items()})
    return out

  # -- what is saved beside the state -----------------------------------------
  def checkpoint_metadata(self, state) -> dict[str, Any]:
    return {"extractor_hash": params_hash(state.params),
            "feature_dim": int(self.config.classifier.feature_dim)}

  def restore_metadata(self, metadata: Mapping[str, Any]) -> None:
    self.extractor_hash = metadata.get("extractor_hash")

  # -- generation and embeddings -----------------------------------------------
  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    del state, key, n, options
    raise ConfigError(
        "the classifier family does not generate samples; use its run with "
        "`medgen embed --workdir RUN` (penultimate features) or "
        "medgen_jax.families.classifier.extract_features, and sample a "
        "generative family (gan, vae)")

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """Held-out scores on the test split, with integrated-gradients maps of
    the log-probability of each test image's true class."""
    report = super().report(state, dataset, context)
    held_out = self._held_out_splits(held_out_view(dataset), 0)
    if held_out:
      split = held_out[-1][1]
      idx = np.random.default_rng(context.seed).permutation(len(split))
      arrays = split.take(np.sort(idx[:_image_report.ATTRIBUTED]))
      params, model = state.params, self.model

      def log_prob(x, labels):
        logits = model.apply({"params": params}, x, train=False)
        return jnp.take_along_axis(jax.nn.log_softmax(logits),
                                   labels[:, None].astype(jnp.int32), 1)[:, 0]

      _image_report.add_attributions(
          report, "attributions", log_prob, arrays["image"], arrays["label"],
          "what the classifier uses for the true class of test images "
          "(log-probability)")
    return report

  def embed(self, state, split: Split) -> dict[str, np.ndarray]:
    """Penultimate features of every example of `split`: "z" [n, F] (the
    name `medgen embed` reads), "logits" [n, K] and "label" [n]."""
    feats, logits = self.predict_arrays(state, split["image"])
    out = {"z": feats, "logits": logits}
    if "label" in split:
      out["label"] = np.asarray(split["label"], np.int32)
    return out


def _load_eval_dataset(data_config) -> Dataset:
  """The --eval-data dataset: the same data options, another name."""
  eval_cfg = copy.deepcopy(data_config)
  eval_cfg.name = data_config.eval_name
  return load_dataset(eval_cfg)


def extract_features(run, images_uint8: np.ndarray) -> np.ndarray:
  """Penultimate features float32 [n, feature_dim] of uint8 images.

  Args:
    run: a classifier run, `medgen_jax.train.loop.load_run(workdir)`; its
      `metadata["extractor_hash"]` names the extractor.
    images_uint8: uint8 [n, *data_shape] (or [n, h, w] for grayscale).

  Returns:
    float32 [n, feature_dim], computed in batches of CHUNK.
  """
  if not isinstance(run.task, ClassifierTask):
    raise ConfigError(f"extract_features needs a classifier run; this run's "
                      f"family is {run.config.family!r} (train one with "
                      "`medgen train classifier`)")
  feats, _ = run.task.predict_arrays(run.state, images_uint8)
  return feats
