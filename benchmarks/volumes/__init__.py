"""Volume preprocessing benchmark: gateway CPU per CT slice, the breakdown, and peak RSS under large series."""
