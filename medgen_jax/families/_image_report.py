"""The evaluation report of an image generator (GAN, image VAE).

`image_report` is what `medgen evaluate` writes for a family that decodes
latent codes into images. Every generated-vs-real number is computed
against the real TEST split; the training split enters only as the
memorisation reference and as the second real sample of the Fréchet
distance's floor. The numbers:

  * with a domain feature extractor (`--extractor RUN`, a run of
    `medgen train classifier` on the same kind of images): Fréchet distance
    beside its floor, KID, precision / recall / density / coverage
    (metrics/image_quality.py), the class mix of `--mix-samples` fresh
    samples (default 10000) as the extractor's classifier labels them
    against the real val and test splits', with the gap's standard error,
    and, for conditional models, how often the classifier agrees with the
    class asked for; the extractor's content hash is in the report's facts;
  * memorisation: each sample's nearest training image in pixel space (and
    in feature space with an extractor) against real test images' nearest
    training images (metrics/memorisation.py), with the closest pairs as a
    PNG;
  * pictures: real test images beside samples, the closest pairs, the
    distance distributions, attribution maps (integrated gradients) of the
    model's critic and of the extractor's classifier on samples, and the
    latent direction that moves the classifier from one class to the other
    with images along it (metrics/latent_directions.py).
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
from typing import Callable

import jax
import numpy as np

from medgen_jax.data.base import Dataset
from medgen_jax.data.pipeline import uint8_to_unit_range
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.metrics import attribution, image_quality, memorisation
from medgen_jax.train.task import Option, Report, ReportContext

EXTRACTOR = Option(
    "--extractor", str, "folder of a classifier run (medgen train "
    "classifier) on the same images: its features score the samples "
    "(Fréchet distance, KID, precision/recall) and it labels their classes")
MIX_SAMPLES = Option(
    "--mix-samples", int, "samples whose class mix the extractor's "
    "classifier labels (default 10000; a share of 624 samples has a "
    "standard error of up to 2 points)", default=10000)
REPORT_OPTIONS = (EXTRACTOR, MIX_SAMPLES)
SHOWN = 32          # real and generated images in the side-by-side picture
PAIRS = 16          # closest sample / training image pairs shown
ATTRIBUTED = 8      # images with attribution maps
CHUNK = 256         # latents decoded at once
WALK_STARTS = 6     # rows of the latent-walk picture
WALK_ALPHAS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
DIRECTION_SAMPLES = 2000
FLOOR_REPEATS = 8   # real subsets averaged for the Fréchet floor
BLUR_SIGMAS = (0.0, 0.5, 1.0)  # pixels; the extractor's sensitivity to blur


@dataclasses.dataclass
class ImageModel:
  """What `image_report` needs of an image generator.

  Attributes:
    decode: (z float [n, latent_dim], labels int32 [n]) -> uint8 images
      [n, *spatial, c]; deterministic in its inputs.
    latent_dim: size of z (z ~ N(0, I)).
    num_classes: classes the model is conditioned on (0: unconditional).
    critic: optional (images float [n, ...] in [-1, 1], labels int32 [n])
      -> float [n]: the model's own per-example score of an image (a GAN
      discriminator's logit), explained with integrated gradients.
    critic_name: how the report names the critic.
  """

  decode: Callable[[np.ndarray, np.ndarray], np.ndarray]
  latent_dim: int
  num_classes: int = 0
  critic: Callable | None = None
  critic_name: str = "critic"


def _split(dataset: Dataset, name: str):
  if name not in dataset.splits:
    raise DataError(f"{dataset.source}: the report needs a {name!r} split "
                    f"(the dataset has {', '.join(dataset.splits)})")
  return dataset.split(name)


def class_counts(prior: np.ndarray, n: int) -> np.ndarray:
  """n split over classes in proportion to `prior` (largest remainders)."""
  raw = np.asarray(prior, np.float64) / np.sum(prior) * n
  counts = np.floor(raw).astype(np.int64)
  order = np.argsort(-(raw - counts), kind="stable")
  counts[order[:n - counts.sum()]] += 1
  return counts


def decode_all(model: ImageModel, z: np.ndarray, labels: np.ndarray
               ) -> np.ndarray:
  """model.decode over z [n, d] and labels [n] in chunks of CHUNK."""
  return np.concatenate([model.decode(z[s:s + CHUNK], labels[s:s + CHUNK])
                         for s in range(0, len(z), CHUNK)])


def generate(model: ImageModel, n: int, seed: int, prior: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """n samples: (z [n, d], labels int32 [n], uint8 images). A conditional
  model gets labels in the training split's class proportions."""
  z = np.asarray(jax.random.normal(jax.random.key(seed),
                                   (n, model.latent_dim)), np.float32)
  if model.num_classes:
    counts = class_counts(prior[:model.num_classes], n)
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
    labels = np.random.default_rng(seed).permutation(labels)
  else:
    labels = np.zeros((n,), np.int32)
  return z, labels, decode_all(model, z, labels)


def load_extractor(path: str, example_shape: tuple[int, ...]):
  """A classifier run for features; ConfigError when it does not fit."""
  from medgen_jax.families.classifier.task import ClassifierTask
  from medgen_jax.train.loop import CONFIG_FILE, load_run
  if not (pathlib.Path(path) / CONFIG_FILE).is_file():
    raise ConfigError(f"--extractor {path}: no {CONFIG_FILE} there; expected "
                      "the folder of a `medgen train classifier` run")
  run = load_run(path)
  if not isinstance(run.task, ClassifierTask):
    raise ConfigError(f"--extractor {path}: a {run.config.family!r} run; "
                      "expected a classifier run (medgen train classifier)")
  if tuple(run.task.data_shape) != tuple(example_shape):
    raise ConfigError(
        f"--extractor {path}: it takes images of shape "
        f"{tuple(run.task.data_shape)}, this run makes {tuple(example_shape)}; "
        "train the extractor on the same image size and channels")
  return run


def _figure_png(draw) -> bytes | None:
  """PNG bytes of a matplotlib figure drawn by draw(ax); None without
  matplotlib (the `analysis` extra)."""
  try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    return None
  fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
  try:
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
  finally:
    plt.close(fig)


def _distance_figure(fake, held_out, what: str) -> bytes | None:
  def draw(ax):
    hi = float(np.percentile(np.concatenate([fake, held_out]), 99.5))
    bins = np.linspace(0.0, hi, 40)
    ax.hist(held_out, bins, density=True, alpha=0.6,
            label="real test image to nearest training image")
    ax.hist(fake, bins, density=True, alpha=0.6,
            label="generated image to nearest training image")
    ax.set_xlabel(f"Euclidean distance ({what})")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
  return _figure_png(draw)


def _flat(images_uint8: np.ndarray) -> np.ndarray:
  return images_uint8.reshape(len(images_uint8), -1).astype(np.float32) / 255.0


def _memorisation(report: Report, fake, test, train, what: str,
                  name: str) -> np.ndarray:
  """Adds one memorisation table (+ figure); returns fake's NN indices."""
  idx, d_fake = memorisation.nearest_neighbours(fake, train)
  _, d_test = memorisation.nearest_neighbours(test, train)
  copy = memorisation.copy_report(d_fake, d_test)
  report.tables[f"Memorisation ({what})"] = [
      {"quantity": k, "value": v} for k, v in copy.items()]
  report.scalars[f"{name}/p_fake_closer"] = copy["p_fake_closer"]
  report.scalars[f"{name}/fake_below_held_out_q01"] = (
      copy["fake_below_held_out_q01"])
  png = _distance_figure(d_fake, d_test, what)
  if png is not None:
    report.figures[f"{name}_distances"] = png
  return idx, d_fake


def _class_mix(report: Report, logits_fake, labels_fake, references,
               class_names, conditional: bool) -> None:
  """The samples' class mix (as the extractor's classifier labels them)
  against held-out real splits, by their labels and by the classifier.

  Args:
    references: [(split name, true labels [m], classifier logits [m, K])],
      the reference split first: the held-out split drawn like the training
      data (val when there is one), which is what an unconditional
      generator learns; a test split may differ in class mix.
  """
  k = logits_fake.shape[1]
  pred_fake = logits_fake.argmax(1)
  n_fake, n_ref = len(pred_fake), len(references[0][1])
  rows = []
  for c in range(k):
    name = class_names[c] if c < len(class_names) else str(c)
    row = {"class": name}
    for split, labels, logits in references:
      row[f"real {split} (labels)"] = float(np.mean(labels == c))
      row[f"real {split} (classifier)"] = float(np.mean(logits.argmax(1) == c))
    row["generated (classifier)"] = float(np.mean(pred_fake == c))
    if conditional:
      row["generated (asked for)"] = float(np.mean(labels_fake == c))
      asked = labels_fake == c
      row["classifier agrees (on asked)"] = (
          float(np.mean(pred_fake[asked] == c)) if asked.any() else
          float("nan"))
    rows.append(row)
  report.tables["Class mix"] = rows
  ref = references[0][0]
  report.facts["class_mix_reference"] = ref
  gaps = [abs(r["generated (classifier)"] - r[f"real {ref} (classifier)"])
          for r in rows]
  worst = rows[int(np.argmax(gaps))]
  report.scalars["class_mix/max_gap_vs_real_classifier"] = max(gaps)
  # Binomial standard error of that gap: both shares are estimates.
  report.scalars["class_mix/max_gap_standard_error"] = share_gap_se(
      worst["generated (classifier)"], n_fake,
      worst[f"real {ref} (classifier)"], n_ref)
  report.facts["class_mix_samples"] = n_fake
  report.scalars["class_mix/max_gap_vs_real_labels"] = max(
      abs(r["generated (classifier)"] - r[f"real {ref} (labels)"])
      for r in rows)
  if conditional:
    report.scalars["class_mix/classifier_agrees"] = float(
        np.mean(pred_fake == labels_fake))
  report.notes.append(
      f"Class mix: the headline gap compares the samples with the real "
      f"{ref.upper()} split, both labelled by the extractor's classifier (its "
      "errors enter both sides). The val split is drawn like the training "
      "split, which is what an unconditional generator learns; a test split "
      "can have another class mix (PneumoniaMNIST's test split has 37.5 % "
      "normal images, its train and val splits 25.8 %). The samples are "
      f"{n_fake} fresh draws (`--mix-samples`), not only the ones scored "
      f"above; the gap's standard error counts both the {n_fake} samples "
      f"and the {n_ref} real {ref} images.")


def share_gap_se(p: float, n: int, q: float, m: int) -> float:
  """Standard error of p - q for shares p of n and q of m independent
  draws (binomial)."""
  return float(np.sqrt(p * (1 - p) / n + q * (1 - q) / m))


def gaussian_blur(images_uint8: np.ndarray, sigma: float) -> np.ndarray:
  """uint8 images [n, *spatial, c] blurred by a Gaussian of `sigma` pixels
  along every spatial axis (separable, edges repeated), rounded to uint8."""
  radius = max(1, int(np.ceil(3 * sigma)))
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  kernel = np.exp(-0.5 * (t / sigma) ** 2)
  kernel /= kernel.sum()
  x = images_uint8.astype(np.float64)
  for axis in range(1, x.ndim - 1):
    pad = [(0, 0)] * x.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(x, pad, mode="edge")
    x = sum(w * np.take(padded, np.arange(i, i + x.shape[axis]), axis=axis)
            for i, w in enumerate(kernel))
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _blur_sensitivity(report: Report, run, dataset: Dataset, class_names
                      ) -> None:
  """How the extractor's class labels of real held-out images move when
  the images are slightly blurred: generated images are often softer than
  real ones, and a classifier that reads softness as a class biases the
  class mix of samples."""
  name = "val" if "val" in dataset.splits else "test"
  images = dataset.split(name)["image"]
  rows = []
  for sigma in BLUR_SIGMAS:
    x = gaussian_blur(images, sigma) if sigma else images
    _, logits = run.task.predict_arrays(run.state, x)
    pred = logits.argmax(1)
    row = {"blur sigma (pixels)": sigma}
    for c in range(logits.shape[1]):
      cname = class_names[c] if c < len(class_names) else str(c)
      row[f"{cname} (classifier)"] = float(np.mean(pred == c))
    rows.append(row)
  report.tables[f"Extractor's class labels of blurred real {name} images"] = rows
  report.notes.append(
      f"The blur table shows how far the classifier's labels of real {name} "
      "images move when the images are blurred a little: read a class-mix "
      "gap of samples that are softer than real images against it.")


def add_attributions(report: Report, name: str, fn, images_uint8, labels,
                  title: str) -> None:
  """IG maps of fn(x) -> [b] on images, black baseline, as an overlay PNG
  (top row: the images; bottom row: their maps)."""
  x = uint8_to_unit_range(images_uint8[:ATTRIBUTED])
  y = np.asarray(labels[:ATTRIBUTED], np.int32)
  f = attribution.WithExtras(lambda images, e: fn(images, e["label"]),
                             {"label": y})
  attr, delta = attribution.integrated_gradients(
      f, x, baseline=-np.ones_like(x), steps=32, batch_size=256)
  attr = np.asarray(attr)
  pictures = np.concatenate([np.repeat(x, 3, -1) if x.shape[-1] == 1 else x,
                             attribution.overlay(x, attr)])
  report.images[name] = (pictures, len(x))
  report.notes.append(
      f"`{name}.png`: {title}; top row the images, bottom row integrated "
      "gradients (32 points, from a black image; red raises the score, blue "
      "lowers it). Largest completeness gap |sum(attr) - (f(x) - f(black))|: "
      f"{float(np.max(np.abs(np.asarray(delta)))):.3g}.")


def image_report(model: ImageModel, dataset: Dataset,
                 context: ReportContext) -> Report:
  """The report of an image generator; see the module docstring."""
  mix_n = context.options.get("mix_samples")
  mix_n = MIX_SAMPLES.default if mix_n is None else mix_n
  if isinstance(mix_n, bool) or not isinstance(mix_n, int) or mix_n < 1:
    raise ConfigError(f"--mix-samples must be a positive integer, got "
                      f"{mix_n!r}; pass e.g. --mix-samples 10000")
  train, test = _split(dataset, "train"), _split(dataset, "test")
  train_images, test_images = train["image"], test["image"]
  num_classes = max(dataset.num_classes, 1)
  prior = np.bincount(train["label"], minlength=num_classes).astype(float)
  n = context.n or len(test_images)
  report = Report()
  z, labels, fake = generate(model, n, context.seed, prior)
  report.facts.update({"generated": n, "real_test": len(test_images),
                       "real_train": len(train_images),
                       "conditional": bool(model.num_classes)})

  shown = min(SHOWN, n, len(test_images))
  pick = np.random.default_rng(context.seed).permutation(
      len(test_images))[:shown]
  report.images["real_vs_generated"] = (uint8_to_unit_range(np.concatenate(
      [test_images[pick], fake[:shown]])), 8)
  report.notes.append(
      f"`real_vs_generated.png`: the first {shown // 8} rows are random real "
      f"test images, the last {shown // 8} rows generated ones.")

  idx, d_fake = _memorisation(report, _flat(fake), _flat(test_images),
                              _flat(train_images), "pixels in [0, 1]",
                              "memorisation_pixels")
  closest = np.argsort(d_fake)[:PAIRS]
  pairs = np.stack([fake[closest], train_images[idx[closest]]], 1)
  report.images["nearest_training_images"] = (
      uint8_to_unit_range(pairs.reshape((-1,) + fake.shape[1:])), 8)
  report.notes.append(
      f"`nearest_training_images.png`: the {len(closest)} generated images "
      "closest to a training image (pixel distance), each followed by that "
      "training image; 4 pairs per row.")

  extractor = context.options.get("extractor")
  if extractor:
    _extractor_sections(report, model, extractor, dataset, train_images,
                        test_images, z, labels, fake, context,
                        prior, mix_n)
  else:
    report.notes.append(
        "No `--extractor`: Fréchet distance, KID, precision/recall and the "
        "class mix need a domain feature extractor (train one with `medgen "
        "train classifier` on the same data and pass its folder).")
  if model.critic is not None:
    add_attributions(report, "critic_attributions", model.critic, fake, labels,
                  f"what the {model.critic_name} responds to in generated "
                  "images")
  return report


def _extractor_sections(report, model, path, dataset, train_images,
                        test_images, z, labels, fake, context,
                        prior, mix_n: int) -> None:
  from medgen_jax.families.classifier.task import extract_features
  run = load_extractor(path, fake.shape[1:])
  report.facts["extractor"] = str(path)
  report.facts["extractor_hash"] = run.metadata.get("extractor_hash")
  report.facts["extractor_step"] = run.step
  f_train = extract_features(run, train_images)
  f_test, logits_test = run.task.predict_arrays(run.state, test_images)
  f_fake, logits_fake = run.task.predict_arrays(run.state, fake)
  n = len(fake)
  q = image_quality.quality_report(
      f_train if len(f_train) >= n else None, f_test, f_fake,
      seed=context.seed, floor_repeats=FLOOR_REPEATS)
  report.scalars.update({k: float(v) for k, v in q.items()
                         if not isinstance(v, str)})
  report.facts["fd_floor_source"] = q["fd_floor_source"]
  report.tables["Sample quality (features of the extractor)"] = [
      {"metric": "Fréchet distance", "value": q["fd"],
       "reference": f"floor {q['fd_floor']:.4g} ± {q['fd_floor_std']:.2g} "
                    f"(ratio {q['fd_ratio']:.3g})"},
      {"metric": "KID", "value": q["kid_mean"],
       "reference": f"± {q['kid_std']:.2g}"},
      {"metric": "precision", "value": q["precision"], "reference": ""},
      {"metric": "recall", "value": q["recall"], "reference": ""},
      {"metric": "density", "value": q["density"], "reference": "1 ≈ real"},
      {"metric": "coverage", "value": q["coverage"], "reference": ""}]
  report.notes.append(
      f"Sample quality compares {n} generated images with the "
      f"{len(test_images)} real TEST images. The Fréchet floor is the same "
      f"distance between {q['fd_floor_size']} real images and the test "
      f"images ({q['fd_floor_source']}; mean ± std over {FLOOR_REPEATS} "
      "random subsets): what a perfect generator of the training "
      "distribution scores at this sample size. At a few hundred samples "
      "the Fréchet distance itself varies by tens of percent from one "
      "sample to another: read ratios near 1 with the floor's std.")
  references = []
  for name in ("val", "test"):
    if name in dataset.splits:
      split = dataset.split(name)
      logits = (logits_test if name == "test" else
                run.task.predict_arrays(run.state, split["image"])[1])
      references.append((name, np.asarray(split["label"]), logits))
  _, mix_labels, mix_fake = generate(model, mix_n, context.seed + 1, prior)
  _, mix_logits = run.task.predict_arrays(run.state, mix_fake)
  _class_mix(report, mix_logits, mix_labels, references, dataset.class_names,
             bool(model.num_classes))
  _blur_sensitivity(report, run, dataset, dataset.class_names)
  _memorisation(report, f_fake, f_test, f_train, "extractor features",
                "memorisation_features")
  k = logits_test.shape[1]
  if k == 2:
    add_attributions(report, "classifier_attributions", _ClassifierMargin(run),
                  fake, labels, "what the extractor's classifier uses to "
                  f"call a generated image {dataset.class_names[1]!r} rather "
                  f"than {dataset.class_names[0]!r}")
    _latent_direction(report, model, run, context, prior,
                      dataset.class_names)


class _ClassifierMargin:
  """logit[1] - logit[0] of a two-class classifier run, per example."""

  def __init__(self, run):
    self.run = run
    self._apply = run.task.model.apply

  def __call__(self, x, labels=None):
    del labels
    logits = self._apply({"params": self.run.state.params}, x, train=False)
    return logits[:, 1] - logits[:, 0]


def _latent_direction(report, model, run, context, prior, class_names):
  """The latent direction that moves the classifier from class 0 to 1."""
  from medgen_jax.metrics import latent_directions as ld
  if model.num_classes:
    cls = int(np.argmax(prior))  # walk inside the most common class
  else:
    cls = 0
  n = DIRECTION_SAMPLES
  z = np.asarray(jax.random.normal(jax.random.key(context.seed + 1),
                                   (n, model.latent_dim)), np.float32)
  labels = np.full((n,), cls, np.int32)
  _, logits = run.task.predict_arrays(run.state,
                                      decode_all(model, z, labels))
  margin = logits[:, 1] - logits[:, 0]
  if (margin > 0).all() or (margin <= 0).all():
    report.notes.append(
        "No latent direction: the classifier puts every one of "
        f"{n} samples in one class.")
    return
  fit = ld.class_direction(z, margin)
  direction = fit["direction"]
  starts = z[:WALK_STARTS]
  walk = ld.walk(starts, direction, np.asarray(WALK_ALPHAS, np.float32))
  flat = walk.reshape(-1, model.latent_dim)
  walk_images = model.decode(flat, np.full((len(flat),), cls, np.int32))
  report.images["latent_direction"] = (uint8_to_unit_range(walk_images),
                                       len(WALK_ALPHAS))

  def score(zz):
    imgs = decode_all(model, zz, np.full((len(zz),), cls, np.int32))
    _, lg = run.task.predict_arrays(run.state, imgs)
    return lg[:, 1] - lg[:, 0]

  effect = ld.walk_effect(score, z[:256], direction,
                          np.asarray(WALK_ALPHAS, np.float32))
  rows = [{"alpha": float(a), "mean margin": float(m),
           f"fraction {class_names[1]}": float(f)}
          for a, m, f in zip(WALK_ALPHAS, effect["mean_score"],
                                   effect["fraction_target"])]
  report.tables[f"Latent direction {class_names[0]} -> {class_names[1]}"] = rows
  report.scalars["latent_direction/fit_accuracy"] = float(fit["fit_accuracy"])
  report.notes.append(
      f"`latent_direction.png`: each row starts from one latent code and "
      f"moves along the unit direction (alphas {WALK_ALPHAS}) of a logistic "
      f"boundary fitted to {n} samples labelled by the extractor's classifier "
      f"({class_names[0]} vs {class_names[1]}; InterFaceGAN, Shen et al. "
      "2020). The table gives the classifier's margin along the walk for "
      "256 starting codes.")
