from django.apps import AppConfig


class VotingConfig(AppConfig):
    name = "sbs.voting"
    default_auto_field = "django.db.models.BigAutoField"
