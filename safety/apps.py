from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from safety import checks  # noqa: F401  (registers the system checks of the AESI lists)
