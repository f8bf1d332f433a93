"""Webhooks: events written to an outbox with each change, signed and delivered by a background dispatcher."""
