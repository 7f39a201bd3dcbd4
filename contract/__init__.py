"""What the serving side and the build side share: model and tensor names, reason codes, the categories file.
Standard library only; imports nothing of the project."""
