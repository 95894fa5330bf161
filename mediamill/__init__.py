"""mediamill: a media pipeline for commerce."""
