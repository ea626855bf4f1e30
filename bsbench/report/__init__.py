"""Reports: comparison tables, plots, HTML pages, latency breakdowns and cell statistics; they read run records only."""
