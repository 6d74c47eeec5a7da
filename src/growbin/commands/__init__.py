"""The command groups of `growbin`, one module each; cli.py puts them together."""
