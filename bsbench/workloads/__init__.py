"""Workloads: datasets, arrival processes, SLOs and the request list every scheduler replays."""
