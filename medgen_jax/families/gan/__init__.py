"""The GAN family (`medgen train gan`): DCGAN on medical images.

task.py: GanTask (flags, data checks, outputs); step.py: the train step on
the generic update. Config: configs/gan.py; models: models/gan.py;
objectives: objectives/minimax.py.
"""

from medgen_jax.families.gan.task import GanTask

__all__ = ["GanTask"]
