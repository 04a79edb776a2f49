from django.apps import AppConfig


class TrialsiteConfig(AppConfig):
    name = "trialsite"
    verbose_name = "trialsite"
