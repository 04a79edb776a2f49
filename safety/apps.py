from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from audit.selectors import register_safety_entity_types
        from safety import checks  # noqa: F401  (registers the system checks of the AESI lists)
        from safety.models import SAFETY_ENTITY_TYPES

        # A blinded rater's participant history leaves these rows out where the study hides safety data from raters.
        register_safety_entity_types(*SAFETY_ENTITY_TYPES)
