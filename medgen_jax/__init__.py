"""medgen_jax: generative models for medical data in JAX and Flax.

The public API a paper's code imports:

    import medgen_jax as mg
    config = mg.configs.gan.get_config()
    mg.train_and_evaluate(config, "runs/my_run")
"""

__version__ = "0.1.0"

from medgen_jax import configs
from medgen_jax.configs import gan as gan_config
from medgen_jax.data.base import ImageDataset, ImageSplit
from medgen_jax.data.registry import DATASETS, load_dataset
from medgen_jax.errors import (CheckpointError, ConfigError, DataError,
                               DownloadError, MedgenError, NonFiniteLossError)
from medgen_jax.models.gan import Discriminator, Generator
from medgen_jax.objectives.minimax import GAN_LOSSES, GanLoss
from medgen_jax.objectives.reduce import mean_over_batch
from medgen_jax.train.loop import load_run, train_and_evaluate
from medgen_jax.train.optimizers import make_optimizer
from medgen_jax.train.state import GANState, TrainState
from medgen_jax.train import gan_task as _gan_task  # registers "gan"
from medgen_jax.train.tasks import TASKS

__all__ = [
    "CheckpointError", "ConfigError", "DATASETS", "DataError", "Discriminator",
    "DownloadError", "GANState", "GAN_LOSSES", "GanLoss", "Generator",
    "ImageDataset", "ImageSplit", "MedgenError", "NonFiniteLossError", "TASKS",
    "TrainState", "configs", "gan_config", "load_dataset", "load_run",
    "make_optimizer", "mean_over_batch", "train_and_evaluate",
]
