import logging

from django.apps import AppConfig

# Loggers that write request paths. The settings put the token filter on the console handler; putting it on these
# loggers as well cleans the record itself, so no handler at all (a file, a log shipper, a test's capture) ever
# receives a participant link token, e.g. from Django's "Not Found: /l/<token>/" warning or an access-log line.
# (Configuring them through LOGGING instead would replace gunicorn's own handlers.)
TOKEN_PATH_LOGGERS = ("django.request", "django.server", "django.security", "gunicorn.access", "gunicorn.error")


class TrialsiteConfig(AppConfig):
    name = "trialsite"
    verbose_name = "trialsite"

    def ready(self) -> None:
        import trialsite.lookups  # noqa: F401  (registers the ``__any`` lookup)
        from trialsite.logging import RedactTokensFilter

        for name in TOKEN_PATH_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
                logger.addFilter(RedactTokensFilter())
