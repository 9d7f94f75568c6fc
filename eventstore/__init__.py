"""The LMDB event log: append, read ranges, follow the tail. Knows bytes, not trading."""
