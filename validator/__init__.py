"""The validator service: the random-number rule, run from the queue."""
