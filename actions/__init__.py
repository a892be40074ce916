"""Built-in action plugins. Each module registers through the same hooks external plugins use."""
