"""Scenes: the model's reference frame, where each character is, the canvas; bundled scene files,
face detection for photos and the cartoon characters' drawing code."""
