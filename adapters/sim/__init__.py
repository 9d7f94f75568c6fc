"""The simulated venue: pure, deterministic matching of orders against candles."""
