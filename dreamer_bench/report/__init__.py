"""Score files in, statistics, tables and figures out (never a model)."""
