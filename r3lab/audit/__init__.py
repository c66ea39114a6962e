"""Did the crop matter? The 2026 audit: rollout variants of a policy's own run (format-only, dummy crop, result-only,
tool-free), the tool-only solved set, of an evaluation, a benchmark or another system's logs, and the card's block."""

from .._lazy import lazy

__getattr__, __dir__, __all__ = lazy(
    __name__,
    {
        ".audit": ["AuditSettings", "audit_rollouts", "audit_table", "majority"],
        ".audit_run": ["AuditRun", "eval_audit", "run_audit"],
        ".imported": ["audit_log", "audit_with_policy"],
        ".bench_audit": ["BenchAudit", "bench_audit_rows"],
        ".audit_card": ["audit_block", "write_audit_block"],
    },
)
