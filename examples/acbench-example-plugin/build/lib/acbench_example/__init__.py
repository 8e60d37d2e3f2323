"""An example acbench plugin package (see README.md beside it)."""
