"""The audit of a model against A⁻¹ and the classical regularized inverses."""

from fastinv.auditing.core import AuditResult, audit

__all__ = ["AuditResult", "audit"]
