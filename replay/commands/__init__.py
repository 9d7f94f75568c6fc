"""Click sub-command groups that live outside ``replay.cli``."""
