"""The alerter service: delivers matched alerts to their webhooks, with retries."""
