"""The HTTP API: subscriptions, query previews and alert history, per token owner."""
