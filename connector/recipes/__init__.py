"""Recipes: the model, the static checker, the engine and its steps, run history, the ledger,
echoes and loops."""
