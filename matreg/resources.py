"""Locate the declarative files (schemas/, connectors/, catalog.yaml) shipped with matreg."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """Path of a shipped declarative file: inside the wheel (`matreg/_data`) or the source tree."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent / name
