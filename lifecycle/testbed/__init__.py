"""A local multi-host testbed: one network namespace with its own sshd per inventory node."""
