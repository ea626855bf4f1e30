"""CLI commands, one module each; every module exposes a click `command`."""
