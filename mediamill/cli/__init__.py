"""The ``mediamill`` command line.

Heavy imports (Prefect, pyvips) happen inside the commands that run flows, so commands
that only read the catalog answer in well under a second.

``root`` builds the command tree; each other module holds the commands of one area, and
``common`` and ``options`` what several of them share.
"""

from mediamill.cli.root import app

__all__ = ["app"]
