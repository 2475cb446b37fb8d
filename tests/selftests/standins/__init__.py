"""Stand-ins for vendor runtimes that this machine does not have."""
