from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "scheduling"
    verbose_name = "Scheduling"

    def ready(self) -> None:
        from participants import hooks as participant_hooks
        from participants import services as participant_services
        from scheduling import blinded_view, checks, selectors
        from scheduling.services import generation, visits

        checks.register()
        # Participants never imports scheduling (arrows go one way); scheduling registers itself. The guard keeps a
        # second ready() (e.g. in tests) from registering a hook twice.
        if generation._on_enrolled not in participant_services._after_enroll:
            participant_services.on_enrolled(generation._on_enrolled)
        if generation._on_randomized not in participant_services._after_randomize:
            participant_services.on_randomized(generation._on_randomized)
        if visits._on_withdrawn not in participant_services._after_withdraw:
            participant_services.on_withdrawn(visits._on_withdrawn)
        participant_hooks.set_protocol_reader(selectors.protocol_facts)
        participant_hooks.on_history_read(blinded_view.history_hidden)
