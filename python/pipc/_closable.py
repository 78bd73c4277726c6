"""The lifecycle every handle shares: ``with obj:`` closes it at block exit,
and a collected handle is closed."""
from __future__ import annotations

from typing import Any


class Closable:
    """Context manager and finalizer around ``close()`` (defined by the subclass)."""

    def close(self) -> None:  # pragma: no cover - always overridden
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
