"""Pure planning: intent + cluster -> a plan DAG with a schedule, and the safety verifier.

Nothing in this package does I/O, reads a clock or draws a random number.
"""
