from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from notifications.services import planning
        from participants import services as participant_services

        # Participants never imports notifications; notifications registers itself. The guard keeps a second ready()
        # (e.g. in tests) from registering the hook twice.
        if planning._on_withdrawn not in participant_services._after_withdraw:
            participant_services.on_withdrawn(planning._on_withdrawn)
        checks.register(_check_rules, "notifications")


def _check_rules(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    from notifications.rules import check_rule_files

    return [checks.Error(problem, id="notifications.E001") for problem in check_rule_files()]
