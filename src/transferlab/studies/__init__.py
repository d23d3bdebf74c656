"""One package per study; the shared engine, models, data and report assembly stay outside."""
