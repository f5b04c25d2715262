"""The VAE family (`medgen train vae`): images and gene expression.

task.py: VaeTask (flags, data checks, batches, outputs, embeddings);
step.py: the per-example negative ELBO on the generic update, and the
held-out scores. Config: configs/vae.py; model: models/vae.py; objectives:
objectives/elbo.py and objectives/likelihoods.py.
"""

from medgen_jax.families.vae.task import VaeTask

__all__ = ["VaeTask"]
