"""lifecycle: cluster lifecycle and upgrade orchestration for OpenStack private clouds."""

__version__ = "0.1.0"
