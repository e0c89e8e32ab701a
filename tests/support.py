"""What the tests share beyond fixtures."""

from __future__ import annotations

from pathlib import Path

from replay_service.cli.children import ServiceProcess

__all__ = ["REPO", "ServiceProcess"]

REPO = Path(__file__).resolve().parent.parent
