"""Train a pix2pix model: the loop, its runtime (device, precision, DDP), checkpoints,
evaluation and training curves."""
