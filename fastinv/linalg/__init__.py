"""The numerics: moments and the surrogate C, Jacobians, randomized SVD, the classical
estimators, spectral comparisons and the statistics of a sweep."""

__all__: list[str] = []
