"""Pure media processing: bytes or paths in, validated info and encoded variants out.

Nothing here imports the rest of mediamill, Prefect or SQL; limits and specs are passed in.
"""
