"""The service (`ghl-connector serve`): listener, receiver, signatures, inbox, pollers,
dispatcher, workers, dead letters."""
