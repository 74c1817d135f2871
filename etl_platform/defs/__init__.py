"""Source domains: one folder each, the same file names in every folder."""
