"""The problem: the forward operator A, the signal priors, and the data y = A x + e."""

__all__: list[str] = []
