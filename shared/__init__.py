"""Code that several wirewatch services use: settings, the article model, the Celery app,
Redis access, the query language and the article stores."""
