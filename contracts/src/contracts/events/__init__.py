"""Every event of the platform, one module per producing context."""
