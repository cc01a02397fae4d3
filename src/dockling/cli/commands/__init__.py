"""One module per command group of the dockling CLI."""
