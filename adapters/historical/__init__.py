"""Historical candles in: CSV, Bybit kline JSON, Parquet, and the built-in generator."""
