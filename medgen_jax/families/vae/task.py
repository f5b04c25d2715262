"""VaeTask: the VAE family as the loop, the CLI and `medgen sample` see it."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import vae as vae_config
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.configs.images import VOLUME_FLAGS
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import (IndexSampler, uint8_to_unit_range,
                                      unit_range_to_uint8)
from medgen_jax.errors import ConfigError, DataError
from medgen_jax.families import _image_report
from medgen_jax.families._images import check_image_data
from medgen_jax.families.vae import step as vae_step
from medgen_jax.models.vae import VAE
from medgen_jax.objectives import elbo as elbo_lib
from medgen_jax.objectives.likelihoods import (LIKELIHOODS, MAX_STUDENT_T_DF,
                                               discretized_student_t)
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import TrainState
from medgen_jax.train.task import (TASKS, BaseTask, Flag, Option, Outputs,
                                   Report, ReportContext)
from medgen_jax.train.update import make_gradient_fn

IMAGE_LIKELIHOODS = ("discretized_logistic", "discretized_gaussian",
                     "discretized_laplace", "discretized_student_t",
                     "bernoulli", "gaussian")
VECTOR_LIKELIHOODS = ("gaussian", "nb", "zinb")
DISCRETIZED = ("discretized_logistic", "discretized_gaussian",
               "discretized_laplace", "discretized_student_t")
EVAL_CHUNK = 32          # held-out examples scored per compiled call
TRAVERSAL_DIMS = 8       # latent dimensions shown in a traversal grid
TRAVERSAL_STEPS = 9      # values per dimension, from -3 to 3


@TASKS.register("vae")
class VaeTask(BaseTask):
  """A VAE on images or expression profiles (see configs/vae.py)."""

  get_config = staticmethod(vae_config.get_config)
  flags = (
      Flag("--likelihood", "vae.likelihood",
           "auto | bernoulli | gaussian | discretized_logistic | "
           "discretized_gaussian | discretized_laplace | "
           "discretized_student_t | nb | zinb"),
      Flag("--student-t-df", "vae.student_t_df",
           "degrees of freedom of discretized_student_t"),
      Flag("--denoise", "vae.denoise",
           "denoising training: gaussian:SIGMA | saltpepper:P (encoder input "
           "corrupted, clean x scored)"),
      Flag("--latent-dim", "vae.latent_dim", "size of z"),
      Flag("--beta", "vae.beta", "weight of the KL term"),
      Flag("--kl-warmup", "vae.kl_warmup_steps", "steps of KL warm-up"),
      Flag("--hidden", "vae.hidden", "MLP widths for expression, e.g. 256,128"),
      Flag("--width", "vae.width", "conv width for images"),
      Flag("--condition", "vae.condition", "condition on: label | batch"),
      Flag("--iwae-samples", "vae.iwae_samples",
           "K of the held-out importance-weighted bound"),
      Flag("--image-size", "data.image_size", "images: height = width"),
      Flag("--matrix", "data.matrix", "expression: X | raw | layers/NAME"),
      Flag("--matrix-kind", "data.matrix_kind",
           "expression: counts | log_normalized | scaled"),
      Flag("--label-key", "data.label_key", "expression: label column"),
      Flag("--batch-key", "data.batch_key", "expression: batch column"),
      Flag("--max-genes", "data.max_genes",
           "expression: keep the N most variable genes (0 = all)"),
      *(Flag(*f) for f in VOLUME_FLAGS),
  )
  report_options = _image_report.REPORT_OPTIONS
  sample_options = (
      Option("--label", int, "condition class to generate (conditional runs)"),
      Option("--library-size", float, "counts: total counts per profile "
             "(default: the training median)"),
  )

  @classmethod
  def validate_config(cls, config) -> None:
    v = config.vae
    if v.likelihood != "auto":
      LIKELIHOODS.get(v.likelihood)
    check_real(v.student_t_df, "vae.student_t_df (--student-t-df)", 0.0,
               MAX_STUDENT_T_DF, lo_open=True)
    try:
      vae_step.parse_denoise(v.denoise)
    except ValueError as e:
      raise ConfigError(f"vae.denoise (--denoise) {e}") from None
    check_int(v.latent_dim, "vae.latent_dim (--latent-dim)", 1, 4097)
    check_real(v.beta, "vae.beta (--beta)", 0.0)
    check_int(v.kl_warmup_steps, "vae.kl_warmup_steps (--kl-warmup)", 0)
    check_int(v.width, "vae.width (--width)", 1, 4097)
    if not v.hidden or not all(isinstance(h, int) and not isinstance(h, bool)
                               and 0 < h <= 65536 for h in v.hidden):
      raise ConfigError(f"vae.hidden (--hidden) must be positive layer "
                        f"widths such as 256,128; got {v.hidden!r}")
    if v.condition not in ("", "label", "batch"):
      raise ConfigError(f"vae.condition (--condition) {v.condition!r}; "
                        "expected label, batch or empty")
    check_int(v.iwae_samples, "vae.iwae_samples (--iwae-samples)", 1, 100001)
    check_int(v.eval_examples, "vae.eval_examples", 1)
    check_real(v.impute_fraction, "vae.impute_fraction", 0.0, 1.0,
               lo_open=True, hi_open=True)

  def __init__(self, config, dataset: Dataset | None = None):
    v = config.vae
    if dataset is not None:
      self._resolve(config, dataset)
    for key in ("resolved_likelihood", "data_shape", "num_conditions"):
      if v[key] is None:
        raise ConfigError(
            f"vae.{key} is not set; it is derived from the data when a run "
            "starts, so build the task from a run's config.json or with a "
            "dataset")
    self.config = config
    self.likelihood = (discretized_student_t(v.student_t_df)
                       if v.resolved_likelihood == "discretized_student_t"
                       else LIKELIHOODS.get(v.resolved_likelihood))
    self.data_shape = tuple(int(d) for d in v.data_shape)
    self.is_image = len(self.data_shape) in (3, 4)  # [h, w, c] or [x, y, z, c]
    self.counts = self.likelihood.data == "counts"
    denoise, level = vae_step.parse_denoise(v.denoise)
    if self.is_image:
      data_range = ((0.0, 1.0) if self.likelihood.data == "binary"
                    else (-1.0, 1.0))
    else:
      data_range = (0.0, None) if self.counts else (None, None)
    self.model = VAE(data_shape=self.data_shape, latent_dim=v.latent_dim,
                     params=tuple(self.likelihood.params),
                     count_data=self.counts, hidden=tuple(v.hidden),
                     width=v.width, num_conditions=v.num_conditions)
    self.step_cfg = vae_step.VaeStepConfig(
        model=self.model, likelihood=self.likelihood, beta=v.beta,
        kl_warmup_steps=v.kl_warmup_steps,
        conditional=bool(v.num_conditions), denoise=denoise,
        denoise_level=level, data_range=data_range)
    self.train_step = vae_step.make_train_step(self.step_cfg,
                                               make_gradient_fn(config))
    self._scores = jax.jit(vae_step.make_scores(self.step_cfg, v.iwae_samples))
    self._reconstruct = jax.jit(vae_step.make_reconstruct(self.step_cfg))
    self._decode = jax.jit(vae_step.make_decode(self.step_cfg))
    self._encode = jax.jit(lambda p, x, c: self.model.apply(
        {"params": p}, x, c if v.num_conditions else None, method=VAE.encode))

  # -- resolving the config against the data ---------------------------------
  @staticmethod
  def _resolve(config, dataset: Dataset) -> None:
    v, d = config.vae, config.data
    keys = dataset.keys
    if "image" in keys:
      shape = dataset.example_shape("image")  # [h, w, c] or [x, y, z, c]
      check_image_data(dataset, d)
      allowed = IMAGE_LIKELIHOODS
      chosen = "discretized_logistic" if v.likelihood == "auto" else v.likelihood
    elif "x" in keys and dataset.modality == "expression":
      kind = dataset.metadata.get("matrix_kind", "")
      shape, allowed = dataset.example_shape("x"), VECTOR_LIKELIHOODS
      chosen = v.likelihood
      if chosen == "auto":
        chosen = "nb" if kind == "counts" else "gaussian"
      if LIKELIHOODS.get(chosen).data == "counts" and kind != "counts":
        raise DataError(
            f"{dataset.source}: --likelihood {chosen} models counts, but the "
            f"matrix {dataset.metadata.get('matrix', '')!r} holds "
            f"{kind or 'non-count'} values (non-integer or negative); use "
            "--likelihood gaussian, or choose a counts matrix with --matrix "
            "and --matrix-kind counts")
    else:
      raise DataError(
          f"{dataset.source}: dataset {dataset.name!r} has arrays "
          f"{list(keys)}; the VAE takes images ('image') or expression "
          "profiles ('x' of an expression dataset)")
    if chosen not in allowed:
      what = "images" if len(shape) >= 3 else "expression profiles"
      raise ConfigError(f"--likelihood {chosen} does not fit {what}; "
                        f"choose one of {', '.join(allowed)}")
    if len(shape) < 3 and vae_step.parse_denoise(v.denoise)[0] == "saltpepper":
      raise ConfigError(f"--denoise {v.denoise} corrupts pixels to their "
                        "lowest or highest level, which expression profiles "
                        "lack; use --denoise gaussian:SIGMA")
    conditions = 0
    if v.condition:
      key = "label" if v.condition == "label" else "batch"
      if key not in keys:
        raise ConfigError(
            f"--condition {v.condition}: dataset {dataset.name!r} has no "
            f"'{key}' array (set --{v.condition}-key for expression data)")
      names = (dataset.class_names if key == "label"
               else dataset.metadata.get("batch_names", ()))
      conditions = len(names) or int(dataset.split("train")[key].max()) + 1
      if conditions < 2:
        raise ConfigError(f"--condition {v.condition} needs at least 2 "
                          f"classes; dataset {dataset.name!r} has {conditions}")
    v.resolved_likelihood = chosen
    v.data_shape = tuple(int(s) for s in shape)
    v.num_conditions = conditions
    if "image" in keys and len(shape) == 4:
      d.voxel_spacing = dataset.metadata.get("voxel_spacing")
    if LIKELIHOODS.get(chosen).data == "counts":
      v.library_size = float(np.median(dataset.split("train")["library_size"]))

  # -- state and data ----------------------------------------------------------
  def init_state(self, key: jax.Array) -> TrainState:
    x = jnp.zeros((2,) + self.data_shape)
    params = self.model.init(key, x, jnp.zeros((2,), jnp.int32),
                             jnp.ones((2,)))["params"]
    return TrainState.create(
        apply_fn=self.model.apply, params=params,
        tx=make_optimizer(self.config.optimizer,
                          self.config.optimizer.learning_rate,
                          self.config.train.steps))

  def to_batch(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dataset arrays of some examples -> the step's batch schema."""
    if self.is_image:
      images = arrays["image"]
      x = (images.astype(np.float32) / 255.0
           if self.likelihood.data == "binary" else uint8_to_unit_range(images))
    else:
      x = np.asarray(arrays["x"], np.float32)
    n = x.shape[0]
    key = {"label": "label", "batch": "batch"}.get(self.config.vae.condition)
    cond = (np.asarray(arrays[key], np.int32) if key
            else np.zeros((n,), np.int32))
    lib = (np.asarray(arrays["library_size"], np.float32) if self.counts
           else np.ones((n,), np.float32))
    return {"x": x, "cond": cond, "library_size": lib}

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    return self.to_batch(split.take(sampler.indices(step)))

  def _to_data(self, x: np.ndarray) -> np.ndarray:
    """Model-space images -> uint8; vectors unchanged."""
    if not self.is_image:
      return np.asarray(x, np.float32)
    x = np.asarray(x, np.float32)
    if self.likelihood.data == "binary":
      return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return unit_range_to_uint8(x)

  # -- evaluation --------------------------------------------------------------
  def _held_out(self, dataset: Dataset) -> tuple[str, dict[str, np.ndarray]]:
    name = "val" if "val" in dataset.splits else (
        "test" if "test" in dataset.splits else "train")
    split = dataset.split(name)
    n = min(len(split), self.config.vae.eval_examples)
    idx = np.random.default_rng(0).permutation(len(split))[:n]
    return name, self.to_batch(split.take(np.sort(idx)))

  def held_out_scores(self, state, batch, key) -> dict[str, float]:
    """Mean ELBO and IWAE bound (nats) over `batch`, in fixed-size chunks."""
    n = batch["x"].shape[0]
    elbos, iwaes = [], []
    for i, start in enumerate(range(0, n, EVAL_CHUNK)):
      chunk = {k: v[start:start + EVAL_CHUNK] for k, v in batch.items()}
      m = chunk["x"].shape[0]
      if m < EVAL_CHUNK:  # pad to the compiled size, drop the padding after
        chunk = {k: np.concatenate([v, np.repeat(v[-1:], EVAL_CHUNK - m, 0)])
                 for k, v in chunk.items()}
      e, w = self._scores(state.params, chunk, jax.random.fold_in(key, i))
      elbos.append(np.asarray(e)[:m])
      iwaes.append(np.asarray(w)[:m])
    elbo, iwae = np.concatenate(elbos), np.concatenate(iwaes)
    out = {"elbo": float(elbo.mean()), "iwae_nll": float(-iwae.mean())}
    if self.is_image and self.likelihood.name in DISCRETIZED:
      out["bits_per_dim"] = float(elbo_lib.bits_per_dim(
          -iwae.mean(), int(np.prod(self.data_shape))))
    return out

  def imputation(self, state, batch, train: Split) -> dict[str, float]:
    """Masks a fraction of held-out entries (set to 0), reconstructs, and
    scores the masked entries only, beside the per-gene training mean."""
    x = batch["x"]
    rng = np.random.default_rng(1)
    mask = rng.random(x.shape) < self.config.vae.impute_fraction
    masked = dict(batch, x=np.where(mask, 0.0, x).astype(np.float32))
    if self.counts:  # the library size seen through the mask, not the truth
      f = self.config.vae.impute_fraction
      masked["library_size"] = (masked["x"].sum(1) / (1.0 - f)).astype(
          np.float32)
    recon, _ = self._reconstruct(state.params, masked)
    recon = np.asarray(recon)
    gene_mean = np.asarray(train["x"], np.float32).mean(0)
    truth = x[mask]
    return {"impute_mae": float(np.abs(recon[mask] - truth).mean()),
            "impute_mae_gene_mean": float(np.abs(
                np.broadcast_to(gene_mean, x.shape)[mask] - truth).mean())}

  def evaluate(self, state, step: int, dataset: Dataset) -> Outputs:
    split_name, batch = self._held_out(dataset)
    key = jax.random.key(self.config.seed + 17)
    scores = self.held_out_scores(state, batch, key)
    out = Outputs(scalars={f"eval/{split_name}_{k}": v
                           for k, v in scores.items()})
    if self.is_image:
      n = min(self.config.train.num_samples, batch["x"].shape[0])
      samples = self.generate(state, key, n, {})
      out.images["samples"] = self._for_grid(samples["image"])
      recon, _ = self._reconstruct(state.params,
                                   {k: v[:8] for k, v in batch.items()})
      originals = self._for_grid(self._to_data(batch["x"][:8]))
      out.images["reconstructions"] = np.concatenate(
          [originals, self._for_grid(self._to_data(np.asarray(recon)))])
      out.images["traversal"] = self.traversal(state, batch)
    else:
      imp = self.imputation(state, batch, dataset.split("train"))
      out.scalars.update({f"eval/{split_name}_{k}": v for k, v in imp.items()})
    return out

  @staticmethod
  def _for_grid(images_uint8: np.ndarray) -> np.ndarray:
    return uint8_to_unit_range(np.asarray(images_uint8))

  def traversal(self, state, batch) -> np.ndarray:
    """Rows: latent dims; columns: that dim from -3 to 3 around the first
    held-out example's posterior mean (other dims fixed). [-1, 1] images."""
    one = {k: v[:1] for k, v in batch.items()}
    _, mean = self._reconstruct(state.params, one)
    dims = min(TRAVERSAL_DIMS, self.config.vae.latent_dim)
    values = np.linspace(-3.0, 3.0, TRAVERSAL_STEPS, dtype=np.float32)
    z = np.repeat(np.asarray(mean), dims * TRAVERSAL_STEPS, axis=0)
    for d in range(dims):
      z[d * TRAVERSAL_STEPS:(d + 1) * TRAVERSAL_STEPS, d] = values
    n = z.shape[0]
    means, _ = self._decode(state.params, jnp.asarray(z),
                            jnp.repeat(one["cond"], n),
                            jnp.ones((n,)), jax.random.key(0))
    return self._for_grid(self._to_data(np.asarray(means)))

  # -- generation and embeddings -----------------------------------------------
  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    label = options.get("label")
    k = self.config.vae.num_conditions
    if label is not None:
      if not k:
        raise ConfigError("--label needs a run trained with --condition")
      if not 0 <= label < k:
        raise ConfigError(f"--label {label}: expected 0..{k - 1}")
    lib = options.get("library_size")
    if lib is not None:
      if not self.counts:
        raise ConfigError("--library-size applies to count likelihoods only")
      check_real(lib, "--library-size", 0.0, lo_open=True)

  def generate(self, state, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n draws from p(z) p(x|z). Images: the decoder's mean image (uint8),
    which is what a VAE's samples usually show; expression: a sample of the
    observation model ("x") and its mean ("x_mean")."""
    k_z, k_x = jax.random.split(key)
    z = jax.random.normal(k_z, (n, self.config.vae.latent_dim))
    k = self.config.vae.num_conditions
    label = options.get("label")
    cond = (np.full((n,), label, np.int32) if label is not None
            else np.arange(n, dtype=np.int32) % max(k, 1))
    lib = options.get("library_size") or self.config.vae.library_size or 1.0
    mean, sample = self._decode(state.params, z, jnp.asarray(cond),
                                jnp.full((n,), lib, jnp.float32), k_x)
    if self.is_image:
      out = {"image": self._to_data(np.asarray(mean))}
    else:
      out = {"x": np.asarray(sample, np.float32),
             "x_mean": np.asarray(mean, np.float32)}
    if k:
      out["label"] = cond
    return out

  def report(self, state, dataset: Dataset, context: ReportContext) -> Report:
    """Held-out ELBO / IWAE bound (and bits/dim) on the test split; for
    images also the image report (families/_image_report.py) of the
    decoder's mean images, z ~ N(0, I), with `--extractor`."""
    report = super().report(state, dataset, context)
    if not self.is_image:
      return report
    labelled = self.config.vae.condition == "label"

    def decode(z, labels):
      n = len(z)
      mean, _ = self._decode(state.params, jnp.asarray(z),
                             jnp.asarray(labels, jnp.int32),
                             jnp.ones((n,), jnp.float32), jax.random.key(0))
      return self._to_data(np.asarray(mean))

    images = _image_report.image_report(_image_report.ImageModel(
        decode=decode, latent_dim=self.config.vae.latent_dim,
        num_classes=self.config.vae.num_conditions if labelled else 0),
                                        dataset, context)
    report.scalars.update(images.scalars)
    report.tables.update(images.tables)
    report.images.update(images.images)
    report.figures.update(images.figures)
    report.facts.update(images.facts)
    report.notes += ["Generated images are the decoder's mean images."] + (
        images.notes)
    return report

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    if "image" not in samples:
      return Outputs()
    return Outputs(images={"samples": self._for_grid(samples["image"])})

  def embed(self, state, split: Split) -> dict[str, np.ndarray]:
    """Posterior means of every example of `split`: z [n, latent] (and the
    labels when the data has them)."""
    zs = []
    n = len(split)
    for start in range(0, n, 256):
      idx = np.arange(start, min(start + 256, n))
      b = self.to_batch(split.take(idx))
      mean, _ = self._encode(state.params, b["x"], b["cond"])
      zs.append(np.asarray(mean))
    out = {"z": np.concatenate(zs)}
    if "label" in split:
      out["label"] = np.asarray(split["label"], np.int32)
    return out
