"""Training any architecture: the trainer, exact resume, checkpoints, distributed runs.

Checkpoint files use ``posenets.checkpoint``'s format (shared with standalone model folders).

The trainer knows nothing about pose: it is given a model, a loss module and a dataset of
ready-made (image, targets) samples, which ``bottomup`` produces. Supernet training builds on it.
"""
