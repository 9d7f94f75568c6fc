"""The pure core of replay: events, fixed-point numbers, the fold. No I/O, no clock."""
