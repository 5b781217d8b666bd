"""The documents against the tree: README's generated map, module docstrings, every path and command named."""
