"""Command-line binaries: thin absl mains around the library functions."""
