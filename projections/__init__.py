"""Read models folded from events: orders, positions, balances, equity, trades, metrics."""
