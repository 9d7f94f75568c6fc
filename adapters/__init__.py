"""The edges: historical data, the simulated venue, Bybit REST and WebSocket."""
