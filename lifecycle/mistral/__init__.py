"""Mistral: plan steps as mistral-lib actions, plans as Mistral v2 workbooks, a lane service."""
