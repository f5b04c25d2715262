#!/usr/bin/env bash
# DCGAN on PneumoniaMNIST (28x28 chest X-rays), the run described in the
# README: 3000 steps, batch 64, non-saturating loss, Adam 2e-4 / beta1 0.5.
# On 2 CPU cores it took 6 min 09 s (about 9.4 steps/s).
#
#   scripts/pneumonia_gan.sh [DATA_DIR] [WORKDIR] [extra medgen flags...]
#
# DATA_DIR holds pneumoniamnist.npz (default ../shared/data/medmnist); pass
# an empty string to download the official file into the cache instead.
# Add --conditional to condition on normal (0) vs pneumonia (1).
set -euo pipefail
data_dir=${1-../shared/data/medmnist}
workdir=${2:-runs/pneumonia-gan}
shift $(( $# > 2 ? 2 : $# ))
medgen train gan --data pneumoniamnist --data-dir "$data_dir" --steps 3000 \
  --workdir "$workdir" "$@"
medgen sample --workdir "$workdir" --n 64 --out "$workdir/final_grid.png"
