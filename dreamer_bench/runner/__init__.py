"""Training runs: the loop, replay, results files, checkpoints, and the grid on joblib or Dask."""
