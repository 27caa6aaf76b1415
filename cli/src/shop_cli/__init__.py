"""The `shop` command line."""
