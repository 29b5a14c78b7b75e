"""Step retry policy: a declared value, turned into schedules by the engine (never by sleeping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How a step's command is retried after a retryable failure or a timeout.

    Attributes:
        initial_interval: wait before the second attempt.
        backoff_coefficient: each further wait is the previous one times this (>= 1).
        maximum_interval: cap on any single wait.
        maximum_attempts: attempts in all, the first included; when used up the saga compensates
            (or, for a compensation, moves to ``failed``).
        non_retryable_error_types: ``error_type`` values of failure replies that are never retried,
            even when the participant marked them retryable.
    """

    initial_interval: timedelta = timedelta(milliseconds=200)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta = timedelta(seconds=10)
    maximum_attempts: int = 5
    non_retryable_error_types: frozenset[str] = field(default_factory=frozenset)

    def problems(self) -> list[str]:
        """What is wrong with this policy, as sentences saying what to fix."""
        found: list[str] = []
        if self.initial_interval <= timedelta(0):
            found.append("initial_interval must be positive")
        if self.backoff_coefficient < 1:
            found.append("backoff_coefficient must be >= 1")
        if self.maximum_interval < self.initial_interval:
            found.append("maximum_interval must be >= initial_interval")
        if self.maximum_attempts < 1:
            found.append("maximum_attempts must be >= 1 (1 means no retry)")
        return found

    def delay_after(self, attempt: int) -> timedelta:
        """The wait between attempt ``attempt`` (1-based) and the next one."""
        seconds = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        return min(timedelta(seconds=seconds), self.maximum_interval)

    def allows_retry(self, attempt: int, error_type: str | None = None) -> bool:
        if error_type is not None and error_type in self.non_retryable_error_types:
            return False
        return attempt < self.maximum_attempts


DEFAULT_RETRY = RetryPolicy()
COMPENSATION_RETRY = RetryPolicy(maximum_attempts=8)
