"""The ``mediamill`` console script and ``python -m mediamill``.

Kept apart from ``mediamill.cli``: a process pool started with ``spawn`` re-runs the main
script in every worker, and a pixel worker has no use for the command tree it would import.
"""

from __future__ import annotations


def main() -> None:
    """Run the command line."""
    from mediamill.cli import app

    app()


if __name__ == "__main__":
    main()
