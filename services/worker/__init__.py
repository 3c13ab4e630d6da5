"""The worker service: the Celery chain that dedupes, cleans, tags, indexes and matches articles."""
