"""Pending markers: seed scenarios that need a server feature Perdura does not have yet.

``@pending_on_perdura("queries")`` skips the test with reason ``pending on Perdura: queries`` when
the server under test is Perdura, and runs it unchanged against the reference Temporal dev server
(``PERDURA_SERVER_CMD`` naming the Temporal CLI). ``PERDURA_RUN_PENDING=1`` runs pending tests
against Perdura too (to see whether a feature now passes). When a feature lands on main and the test passes
against Perdura, its marker is removed in the same landing.
"""

from __future__ import annotations

import os
import shlex

import pytest


def is_reference_server() -> bool:
    """True when PERDURA_SERVER_CMD runs the Temporal CLI (its program name contains "temporal")."""
    cmd = os.environ.get("PERDURA_SERVER_CMD", "").strip()
    if not cmd:
        return False
    program = os.path.basename(shlex.split(cmd)[0])
    return "temporal" in program


def is_perdura() -> bool:
    return not is_reference_server()


def pending_on_perdura(feature: str):
    """Skip on Perdura (the feature is pending there); run against the reference server."""
    run_anyway = os.environ.get("PERDURA_RUN_PENDING", "") not in ("", "0")
    return pytest.mark.skipif(is_perdura() and not run_anyway, reason=f"pending on Perdura: {feature}")
