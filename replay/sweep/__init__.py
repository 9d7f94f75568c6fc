"""``replay sweep``: parameter search over a card's ``params:``, recorded as a stream.

Module map: ``space`` (the search space from the card and ``--grid``), ``events`` (the
sweep stream's records), ``trial`` (one trial: a backtest through ``replay.backtest``),
``executors`` (in-process, a local process pool over memory-mapped candles, Ray),
``search`` (grid, seeded random, Optuna TPE in fixed ask/tell batches), ``runner``
(the sweep: start or resume the stream, run what is missing, choose the best),
``stats`` (deflated Sharpe ratio, probability of backtest overfitting), ``commands``
(the click commands).
"""
