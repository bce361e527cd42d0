"""What the commands do, as library calls: run, analyze, sweep and bench."""

__all__: list[str] = []
