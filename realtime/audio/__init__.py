"""The audio front end: ingest, resampling, VAD, audio sources, mixed input, diarization and the
binding table that says which voice drives which character."""
