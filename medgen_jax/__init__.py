"""medgen_jax: generative models for medical data in JAX and Flax."""

__version__ = "0.1.0"
