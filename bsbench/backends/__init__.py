"""Who executes a run's steps (real runner, virtual time, simulated, cluster, OpenAI server), and run_benchmark."""
