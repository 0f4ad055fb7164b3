"""The visit session's rules pinned down one by one (written to kill the mutants `make mutate` found)."""
