"""The model: the MM-DiT generator with its Embedding Router, its audio encoder and frame autoencoder,
their configs and checkpoints, and the shipped default model."""
