"""Metrics as pure functions of arrays (latent spaces today; sample quality,
sequences and survival as their families land)."""
