"""Streaming generation: a session that makes a scene's video chunk by chunk with a rolling cache,
the listener/speaker regions and the offline sampler."""
