"""Commons: the shell around the pure core (Matrix client, storage, scheduler, config, CLI)."""

__version__ = "0.1.0"
