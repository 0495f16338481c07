"""CLI commands of this area (filled in by its issue)."""


def register(cli):
    """Add this module's commands to the ``ivr`` group."""
