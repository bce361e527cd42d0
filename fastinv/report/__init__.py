"""The report of an audit: metrics JSON, arrays, Markdown, self-contained HTML and plots."""

from fastinv.report.writer import write_audit_report, write_report

__all__ = ["write_audit_report", "write_report"]
