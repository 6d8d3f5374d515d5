"""Secrets never leave the process: every string the engine stores or shows passes through here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"


class Redactor:
    """Replaces every known secret value with "***" in text and in JSON-like data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        # longest first, so a secret containing another is masked whole
        self._values = sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True)

    @classmethod
    def from_secrets(cls, secrets: object | None) -> Redactor:
        """From the formats' Secrets (anything with `values()` of strings), or nothing."""
        values = getattr(secrets, "values", None)
        return cls(str(v) for v in values()) if callable(values) else cls()

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
