"""Full screens pushed over the app: one per file."""
