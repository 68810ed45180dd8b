"""The errors of the extracts domain (the kernel's typed errors cover the rest)."""

from __future__ import annotations


class BuildError(Exception):
    """The build cannot go on; the message says why (shown on the page and in the API)."""


class PackageError(Exception):
    """The package cannot be trusted; the message names what failed."""
