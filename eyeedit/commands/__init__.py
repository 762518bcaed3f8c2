"""One module per CLI command; each imports heavy libraries inside its function body."""
