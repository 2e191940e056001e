"""Progress bars: tqdm in terminals and notebooks, nothing elsewhere."""

from __future__ import annotations

import sys


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def make_bar(total: int, enabled: bool | None, desc: str):
    """A tqdm bar when ``enabled`` (None: only on a TTY or in a notebook)."""
    if enabled is None:
        enabled = _in_notebook() or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    if not enabled or total <= 0:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", leave=False)
