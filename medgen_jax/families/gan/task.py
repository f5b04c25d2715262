"""GanTask: the GAN family as the loop, the CLI and `medgen sample` see it."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from medgen_jax.configs import gan as gan_config
from medgen_jax.configs.base import check_int, check_real
from medgen_jax.configs.images import VOLUME_FLAGS, image_ndim_and_size
from medgen_jax.families._images import check_image_shape
from medgen_jax.families import _image_report
from medgen_jax.data.base import Dataset, Split
from medgen_jax.data.pipeline import (IndexSampler, uint8_to_unit_range,
                                      unit_range_to_uint8)
from medgen_jax.errors import ConfigError
from medgen_jax.families.gan import step as gan_step
from medgen_jax.families.gan.augment import parse_ops as augment_ops
from medgen_jax.models.gan import D_NORMS, G_NORMS, Discriminator, Generator
from medgen_jax.models.layers import UPSAMPLE_KINDS, num_resolution_stages
from medgen_jax.objectives.minimax import GAN_LOSSES
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import GANState, TrainState
from medgen_jax.train.task import (TASKS, BaseTask, Flag, Option, Outputs,
                                   Report, ReportContext)
from medgen_jax.train.update import make_gradient_fn

MAX_IMAGE_SIZE = 1024
MAX_VOLUME_SIZE = 256
EVAL_EXAMPLES = 256  # real images per split for the held-out D statistics


def resolved_d_norm(config) -> str:
  """gan.d_norm with "auto" resolved: layer norm for gradient-penalty losses
  (the penalty is per example), batch norm otherwise (DCGAN)."""
  if config.gan.d_norm != "auto":
    return config.gan.d_norm
  return "layer" if GAN_LOSSES.get(config.gan.loss).gradient_penalty else "batch"


@TASKS.register("gan")
class GanTask(BaseTask):
  """DCGAN training on an image dataset (see configs/gan.py)."""

  get_config = staticmethod(gan_config.get_config)
  upgrade_config = staticmethod(gan_config.upgrade)
  flags = (
      Flag("--image-size", "data.image_size",
           "height = width: base*2^k, base 4..7 (8, 14, 16, 28, 32, 64, 128 ...)"),
      Flag("--loss", "gan.loss", "minimax | nonsaturating | wgan-gp | hinge"),
      Flag("--d-steps", "gan.d_steps", "discriminator updates per G update"),
      Flag("--g-lr", "gan.g_learning_rate",
           "generator learning rate (default --lr)"),
      Flag("--d-lr", "gan.d_learning_rate",
           "discriminator learning rate (default --lr)"),
      Flag("--latent-dim", "gan.latent_dim", "size of z"),
      Flag("--width", "gan.width", "channels of G's last block / D's first"),
      Flag("--g-width", "gan.g_width", "channels of G's last block, if "
           "not --width (G's capacity alone)"),
      Flag("--upsample", "gan.upsample", "subpixel | transpose"),
      Flag("--conditional", "gan.conditional",
           "condition G and D on the class labels", const=True),
      Flag("--augment", "gan.augment", "DiffAugment of D's inputs: a comma-"
           "separated subset of translation,cutout,color"),
      Flag("--r1", "gan.r1_weight", "gamma of the R1 penalty on D's "
           "gradient at real images (0 = off)"),
      Flag("--g-norm", "gan.g_norm", "G's normalisation: batch | pixel | "
           "none"),
      Flag("--minibatch-std", "gan.d_minibatch_std", "group size of D's "
           "minibatch standard deviation feature (0 = off)"),
      Flag("--pack", "gan.d_pack", "PacGAN: D judges packs of this many "
           "examples at once (1 = off; 2 penalises dropped modes)"),
      Flag("--d-joint-batch", "gan.d_joint_batch", "D judges real and "
           "generated images as one batch, so its batch norm normalises "
           "both with the same statistics", const=True),
      Flag("--ada-target", "gan.ada_target", "ADA: adapt the augmentation "
           "probability toward this r_t (0.6); 0 = always augment"),
      *(Flag(*f) for f in VOLUME_FLAGS),
  )
  sample_options = (
      Option("--label", int, "class to generate (conditional runs); default: "
             "every class in turn"),
  )
  report_options = _image_report.REPORT_OPTIONS
  data_keys = ("image", "label")

  @classmethod
  def validate_config(cls, config) -> None:
    g = config.gan
    GAN_LOSSES.get(g.loss)
    size = check_int(config.data.image_size, "data.image_size (--image-size)",
                     1, MAX_IMAGE_SIZE + 1)
    try:
      num_resolution_stages(size)
    except ValueError as e:
      raise ConfigError(f"--image-size: {e}") from None
    volume = check_int(config.data.get("volume", 0), "data.volume (--volume)",
                       0, MAX_VOLUME_SIZE + 1)
    if volume:
      try:
        num_resolution_stages(volume)
      except ValueError as e:
        raise ConfigError(f"--volume: {e}".replace("image size", "volume "
                                                   "size")) from None
    if g.upsample not in UPSAMPLE_KINDS:
      raise ConfigError(f"gan.upsample {g.upsample!r}; expected one of "
                        f"{', '.join(UPSAMPLE_KINDS)}")
    if g.g_norm not in G_NORMS:
      raise ConfigError(f"gan.g_norm {g.g_norm!r}; expected one of "
                        f"{', '.join(G_NORMS)}")
    if g.d_norm != "auto" and g.d_norm not in D_NORMS:
      raise ConfigError(f"gan.d_norm {g.d_norm!r}; expected auto or one of "
                        f"{', '.join(D_NORMS)}")
    if GAN_LOSSES.get(g.loss).gradient_penalty and resolved_d_norm(config) == "batch":
      raise ConfigError(
          "--loss wgan-gp penalises each example's critic gradient, which "
          "batch norm in the discriminator makes depend on the whole batch; "
          "use --set gan.d_norm=layer (or none)")
    try:
      ops = augment_ops(g.augment)
    except ValueError as e:
      raise ConfigError(f"--augment: {e}") from None
    check_real(g.ada_target, "gan.ada_target (--ada-target)", 0.0, 1.0,
               hi_open=True)
    check_real(g.ada_kimg, "gan.ada_kimg", 0.0, lo_open=True)
    if g.ada_target > 0 and not ops:
      raise ConfigError("--ada-target adapts the probability of the "
                        "augmentations; name them with --augment (e.g. "
                        "--augment translation,cutout,color)")
    check_int(g.latent_dim, "gan.latent_dim (--latent-dim)", 1, 4097)
    check_int(g.width, "gan.width (--width)", 1, 4097)
    if g.g_width is not None:
      check_int(g.g_width, "gan.g_width (--g-width)", 1, 4097)
    check_int(g.d_steps, "gan.d_steps (--d-steps)", 1, 101)
    check_real(g.ema_decay, "gan.ema_decay", 0.0, 1.0, hi_open=True)
    check_real(g.gp_weight, "gan.gp_weight", 0.0)
    check_real(g.r1_weight, "gan.r1_weight (--r1)", 0.0)
    mbstd = check_int(g.d_minibatch_std, "gan.d_minibatch_std "
                      "(--minibatch-std)", 0, 4097)
    if mbstd and GAN_LOSSES.get(g.loss).gradient_penalty:
      raise ConfigError(
          "--loss wgan-gp penalises each example's critic gradient alone, and "
          "--minibatch-std makes D's output depend on the other examples; "
          "use one or the other")
    pack = check_int(g.d_pack, "gan.d_pack (--pack)", 1, 65)
    if pack > 1:
      if g.conditional:
        raise ConfigError("--pack judges several examples at once, each "
                          "with its own label; use it without --conditional")
      if GAN_LOSSES.get(g.loss).gradient_penalty:
        raise ConfigError("--loss wgan-gp penalises each example's critic "
                          "gradient alone, and --pack judges examples in "
                          "packs; use one or the other")
      if g.r1_weight > 0:
        raise ConfigError("--r1 penalises D's slope at each real image, and "
                          "--pack gives one logit per pack of images; use "
                          "one or the other")
      if config.train.batch_size % pack:
        raise ConfigError(f"--pack {pack} needs a batch size that is a "
                          f"multiple of it; got --batch-size "
                          f"{config.train.batch_size}")
    if g.d_joint_batch and (resolved_d_norm(config) != "batch" or mbstd):
      raise ConfigError(
          "--d-joint-batch shares D's batch-norm statistics between real and "
          "generated images; it needs batch norm in D (gan.d_norm batch or "
          "auto) and no --minibatch-std, whose groups would mix the two")
    for key, flag in (("g_learning_rate", "--g-lr"),
                      ("d_learning_rate", "--d-lr")):
      if g[key] is not None:
        check_real(g[key], f"gan.{key} ({flag})", 0.0, lo_open=True)

  def __init__(self, config, dataset: Dataset | None = None):
    g = config.gan
    if dataset is not None:
      self._resolve(config, dataset)
    for key in ("channels", "num_classes"):
      if g[key] is None:
        raise ConfigError(
            f"gan.{key} is not set; it is derived from the data when a run "
            "starts, so build the task from a run's config.json or with a "
            "dataset")
    self.config = config
    self.conditional = bool(g.num_classes)
    self.ndim, self.size = image_ndim_and_size(config.data)
    self.generator = Generator(
        image_size=self.size, channels=g.channels,
        width=g.width if g.g_width is None else g.g_width,
        num_classes=g.num_classes, upsample=g.upsample, ndim=self.ndim,
        norm=g.g_norm)
    self.discriminator = Discriminator(
        image_size=self.size, width=g.width, num_classes=g.num_classes,
        norm=resolved_d_norm(config), ndim=self.ndim,
        minibatch_std=int(g.d_minibatch_std), pack=int(g.d_pack))
    self.train_step = gan_step.make_gan_train_step(
        gan_step.GanStepConfig(
            loss=GAN_LOSSES.get(g.loss), latent_dim=g.latent_dim,
            conditional=self.conditional, gp_weight=g.gp_weight,
            r1_weight=float(g.r1_weight),
            ema_decay=g.ema_decay, augment=augment_ops(g.augment),
            ada_target=float(g.ada_target), ada_kimg=float(g.ada_kimg),
            joint_batch=bool(g.d_joint_batch)),
        gradient_fn=make_gradient_fn(config))
    self._sample = jax.jit(gan_step.make_sample_fn(self.generator,
                                                   self.conditional))
    self._d_mean = jax.jit(gan_step.make_discriminator_mean(self.conditional))

  @staticmethod
  def _resolve(config, dataset: Dataset) -> None:
    """Checks the dataset against the config; sets the derived fields."""
    ndim, size = image_ndim_and_size(config.data)
    *spatial, c = dataset.example_shape("image")
    check_image_shape(dataset, spatial, ndim, size)
    if config.gan.conditional and dataset.num_classes < 2:
      raise ConfigError(
          f"--conditional needs labels with at least 2 classes; dataset "
          f"{dataset.name!r} has {dataset.num_classes}")
    config.gan.channels = int(c)
    if ndim == 3:
      config.data.voxel_spacing = dataset.metadata.get("voxel_spacing")
    config.gan.num_classes = (int(dataset.num_classes)
                              if config.gan.conditional else 0)

  # -- state -----------------------------------------------------------------
  def init_state(self, key: jax.Array) -> GANState:
    c, g = self.config, self.config.gan
    k_g, k_d = jax.random.split(key)
    z = jnp.zeros((2, g.latent_dim))
    y = jnp.zeros((2,), jnp.int32) if self.conditional else None
    x = jnp.zeros((2 * g.d_pack,) + (self.size,) * self.ndim + (g.channels,))
    g_vars = self.generator.init(k_g, z, y, train=False)
    d_vars = self.discriminator.init(k_d, x, y, train=False)
    lr = c.optimizer.learning_rate
    gen = TrainState.create(
        apply_fn=self.generator.apply, params=g_vars["params"],
        tx=make_optimizer(c.optimizer, g.g_learning_rate or lr, c.train.steps),
        batch_stats=g_vars.get("batch_stats", {}))
    disc = TrainState.create(
        apply_fn=self.discriminator.apply, params=d_vars["params"],
        tx=make_optimizer(c.optimizer, g.d_learning_rate or lr, c.train.steps,
                          updates_per_step=g.d_steps),
        batch_stats=d_vars.get("batch_stats", {}))
    adaptive = bool(augment_ops(g.augment)) and g.ada_target > 0
    return GANState(gen=gen, disc=disc, ema_params=gen.params,
                    ema_batch_stats=gen.batch_stats,
                    augment_p=jnp.zeros((), jnp.float32) if adaptive else None)

  # -- data ------------------------------------------------------------------
  def batch_axes(self, batch) -> dict[str, int]:
    return {"image": 1, "label": 1}  # [d_steps, batch, ...]

  def make_batch(self, split: Split, sampler: IndexSampler,
                 step: int) -> dict[str, np.ndarray]:
    """Real batches d_steps*step ... d_steps*step + d_steps - 1, stacked:
    image float32 [d_steps, batch, h, w, c] in [-1, 1], label [d_steps, batch]."""
    d = self.config.gan.d_steps
    parts = [split.take(sampler.indices(step * d + k)) for k in range(d)]
    return {"image": np.stack([uint8_to_unit_range(p["image"]) for p in parts]),
            "label": np.stack([p["label"] for p in parts])}

  # -- sampling and evaluation -------------------------------------------------
  def grid_inputs(self, n: int, seed: int, label: int | None = None):
    """Fixed latents (and labels: one class per grid row) for sample grids."""
    z = jax.random.normal(jax.random.key(seed), (n, self.config.gan.latent_dim))
    ncols = int(np.ceil(np.sqrt(n)))
    if label is not None:
      labels = np.full((n,), label, np.int32)
    elif self.conditional:
      labels = (np.arange(n) // ncols) % self.config.gan.num_classes
    else:
      labels = np.zeros((n,), np.int32)
    return z, jnp.asarray(labels, jnp.int32)

  def sample(self, state: GANState, z, labels) -> np.ndarray:
    """EMA-generator images [n, h, w, c] in [-1, 1]."""
    return np.asarray(self._sample(state, z, labels))

  def evaluate(self, state: GANState, step: int, dataset: Dataset) -> Outputs:
    """A sample grid at fixed latents, and D's mean logit on training vs
    held-out real images (a growing gap means D is overfitting)."""
    z, labels = self.grid_inputs(self.config.train.num_samples,
                                 seed=self.config.seed + 1)
    out = Outputs(images={"samples": self.sample(state, z, labels)})
    if "val" in dataset.splits:
      for name in ("train", "val"):
        split = dataset.split(name)
        idx = np.random.default_rng(0).permutation(len(split))[:EVAL_EXAMPLES]
        idx = idx[:len(idx) - len(idx) % self.config.gan.d_pack]  # whole packs
        out.scalars[f"eval/d_logit_{name}"] = float(self._d_mean(
            state, uint8_to_unit_range(split["image"][idx]),
            split["label"][idx]))
    return out

  def check_sample_options(self, options: Mapping[str, Any]) -> None:
    label = options.get("label")
    if label is None:
      return
    k = self.config.gan.num_classes
    if not k:
      raise ConfigError("--label needs a run trained with --conditional")
    if not 0 <= label < k:
      raise ConfigError(f"--label {label}: expected 0..{k - 1}")

  def generate(self, state: GANState, key: jax.Array, n: int,
               options: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """n EMA-generator images as uint8 [n, h, w, c] (and int32 labels [n]
    for conditional runs: --label, or every class in turn)."""
    z = jax.random.normal(key, (n, self.config.gan.latent_dim))
    label = options.get("label")
    if label is not None:
      labels = np.full((n,), label, np.int32)
    elif self.conditional:
      labels = np.arange(n, dtype=np.int32) % self.config.gan.num_classes
    else:
      labels = np.zeros((n,), np.int32)
    images = unit_range_to_uint8(self.sample(state, z, jnp.asarray(labels)))
    out = {"image": images}
    if self.conditional:
      out["label"] = labels
    return out

  def render(self, samples: Mapping[str, np.ndarray]) -> Outputs:
    return Outputs(images={"samples": uint8_to_unit_range(samples["image"])})

  def image_model(self, state: GANState) -> _image_report.ImageModel:
    """The EMA generator (inference mode) and D's logit as an ImageModel."""
    disc = state.disc
    conditional = self.conditional
    pack = int(self.config.gan.d_pack)

    def decode(z, labels):
      return unit_range_to_uint8(self.sample(state, jnp.asarray(z),
                                             jnp.asarray(labels)))

    def critic(x, labels):
      # A packing D judges each image as a pack of that image's copies.
      logits = disc.apply_fn(disc.variables(disc.params),
                             jnp.repeat(x, pack, axis=0),
                             labels if conditional else None, train=False)
      return logits[::pack]

    return _image_report.ImageModel(
        decode=decode, latent_dim=self.config.gan.latent_dim,
        num_classes=self.config.gan.num_classes, critic=critic,
        critic_name="discriminator")

  def report(self, state: GANState, dataset: Dataset,
             context: ReportContext) -> Report:
    """Sample quality, class mix, memorisation and pictures of the EMA
    generator against the test split (families/_image_report.py), with
    D's attributions on generated images."""
    report = _image_report.image_report(self.image_model(state), dataset,
                                        context)
    report.notes.insert(0, "Samples come from the EMA generator in inference "
                        "mode, z ~ N(0, I).")
    return report
