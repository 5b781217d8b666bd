"""The vLLM engine process: its command line from a profile, the child process, its supervisor, the demo checkpoint."""
