from django.apps import AppConfig


class AssessmentsConfig(AppConfig):
    name = "assessments"
    verbose_name = "Assessments"

    def ready(self) -> None:
        from assessments import (
            checks,  # noqa: F401  (registers the system checks)
            services,
        )
        from participants import services as participant_services

        _redact_token_loggers()

        # Participants never imports assessments; assessments registers itself. The guard keeps a second ready()
        # from registering the hook twice.
        if services._on_withdrawn not in participant_services._after_withdraw:
            participant_services.on_withdrawn(services._on_withdrawn)


# Loggers that write request paths. trialsite.logging's filter sits on the console handler; putting it on these
# loggers as well cleans the record itself, so no handler at all (a file, a log shipper, a test's capture) ever
# receives a link token, e.g. from Django's "Not Found: /l/<token>/" warning or an access-log line.
TOKEN_PATH_LOGGERS = ("django.request", "django.server", "django.security", "gunicorn.access", "gunicorn.error")


def _redact_token_loggers() -> None:
    import logging

    from trialsite.logging import RedactTokensFilter

    for name in TOKEN_PATH_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokensFilter) for f in logger.filters):
            logger.addFilter(RedactTokensFilter())
