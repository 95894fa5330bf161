"""One module per kind of filesystem, all behind the small interface in :mod:`.base`."""
