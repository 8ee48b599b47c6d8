"""Commons chat interface: command declarations, parsing, handlers and rendering. No I/O."""
