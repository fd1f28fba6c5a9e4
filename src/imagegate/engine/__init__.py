"""Task lifecycle: states, transitions, retry policy, deadlines, cancel and idempotency."""
