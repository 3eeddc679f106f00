"""Watches MongoDB Atlas App Services error logs and texts the on-call numbers."""
