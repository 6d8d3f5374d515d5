"""The `lifecycle` command."""
