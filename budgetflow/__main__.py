"""`python -m budgetflow`: the same command line as the `budgetflow` console script."""

from .cli import main

if __name__ == "__main__":
    main()
