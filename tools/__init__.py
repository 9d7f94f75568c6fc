"""Developer tools: the Bybit venue emulator, data import, benchmarks."""
