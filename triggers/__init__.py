"""Built-in trigger plugins. Each module registers through the same hooks external plugins use."""
