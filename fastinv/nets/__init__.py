"""The networks: fastinv's models, the training loop, and loading a user's model."""

__all__: list[str] = []
