"""The `eyeedit` command line: a lazy click group and one module per command."""
