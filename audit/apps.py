from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import auth_events  # noqa: F401  (connects the log-in / failed log-in receivers)
