"""Why a job failed, as one line for its user and one label for monitoring: each message the
workers and the store write starts with the phrase of its reason, so that `reason_of` can count
failures by reason (a closed set, bounded labels) without a column of its own."""

TIME_LIMIT = "the job ran longer than the limit"
INVALID_SPEC = "the stored spec does not validate"
INVALID_RESULT = "the computation produced an invalid result"
INTERNAL = "internal error"
NOT_STORED = "the result could not be stored"
GAVE_UP = "gave up after"
SWEEP = "the sweep's table failed"

REASONS = {
    TIME_LIMIT: "time_limit",
    INVALID_SPEC: "invalid_spec",
    INVALID_RESULT: "invalid_result",
    INTERNAL: "internal",
    NOT_STORED: "not_stored",
    GAVE_UP: "worker_lost",
    SWEEP: "sweep",
}
INPUT = "input"
"""Any other message: the science refused its input with a reason (a ValueError)."""


def reason_of(error: str | None) -> str:
    """The reason label of a failure message."""
    text = error or ""
    return next((reason for phrase, reason in REASONS.items() if text.startswith(phrase)), INPUT)
