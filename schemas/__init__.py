"""marshmallow schemas: the wire contract of the HTTP API and of sync ops."""
