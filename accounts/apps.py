from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Staff accounts"

    def ready(self) -> None:
        from accounts import (
            admin_cleanup,  # noqa: F401  (takes credential stores out of the Django admin)
            schema,  # noqa: F401  (the authentication schemes of the OpenAPI schema)
        )
