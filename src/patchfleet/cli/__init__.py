"""The ``patchfleet`` command line: one Typer app, one module per command group."""

from patchfleet.cli.app import app, main

__all__ = ["app", "main"]
