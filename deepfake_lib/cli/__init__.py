"""Command lines: thin parsers over the library."""
