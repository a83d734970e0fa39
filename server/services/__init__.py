"""Domain services: the business rules, shared by the HTTP API and the sync op handlers."""
