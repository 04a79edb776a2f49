from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Staff pages (server-rendered). They read through the owning apps' selectors and write through their services;
    no domain rule lives here."""

    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"
