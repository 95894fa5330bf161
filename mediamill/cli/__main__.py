"""``python -m mediamill.cli``: the ``mediamill`` command."""

from mediamill.cli import app

if __name__ == "__main__":
    app()
