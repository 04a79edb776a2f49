from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from audit.selectors import register_safety_entity_types
        from safety import checks  # noqa: F401  (registers the system checks of the AESI and medication class lists)
        from safety.models import SAFETY_ENTITY_TYPES
        from safety.services._booking_check import dosing_booking_check
        from scheduling import hooks

        # Scheduling never imports safety (arrows go one way): safety plugs its medication check into dosing
        # bookings. Registering twice (a second ready() in tests) has no effect.
        hooks.on_dosing_booking(dosing_booking_check)
        # A blinded rater's participant history leaves these rows out where the study hides safety data from raters.
        register_safety_entity_types(*SAFETY_ENTITY_TYPES)
