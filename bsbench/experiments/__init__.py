"""Experiments made of many runs: sweeps, load capacity, the regression gate, executors, paper reproduction."""
