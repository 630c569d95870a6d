"""The synthetic dialogue world: speech (espeak), dialogues, visemes and clips rendered from a seed."""
