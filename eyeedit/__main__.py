"""`python -m eyeedit` runs the CLI (also how `torchrun -m eyeedit train` starts workers)."""

from eyeedit.cli.main import main

if __name__ == "__main__":
    main()
