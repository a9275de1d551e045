"""Wire-format parsers: one place knows each external protocol (pure, no I/O)."""
