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

        # Participants never imports assessments; assessments registers itself. The guard keeps a second ready()
        # from registering the hook twice.
        if services._on_withdrawn not in participant_services._after_withdraw:
            participant_services.on_withdrawn(services._on_withdrawn)
