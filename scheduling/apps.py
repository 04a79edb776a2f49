from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from participants.services import on_randomized, on_withdrawn
        from scheduling import checks, services

        checks.register()
        # Participants never imports scheduling (arrows go one way); scheduling registers itself. The guard keeps a
        # second ready() (e.g. in tests) from registering a hook twice.
        from participants import services as participant_services

        if services._on_randomized not in participant_services._after_randomize:
            on_randomized(services._on_randomized)
        if services._on_withdrawn not in participant_services._after_withdraw:
            on_withdrawn(services._on_withdrawn)
