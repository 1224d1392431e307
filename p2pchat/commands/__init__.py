"""One module per group of CLI commands; each ``run_*`` takes the parsed args, returns the exit code."""
