"""Moving data in and out: export, backup and restore, import."""
