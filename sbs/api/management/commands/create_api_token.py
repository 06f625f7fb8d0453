from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sbs.api import services


class Command(BaseCommand):
    help = (
        "Create an API token for USER and print it (only its digest is stored: this is the "
        "one time it is shown). Use it as the header Authorization: Bearer TOKEN."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"{username!r} is deactivated: a token would open nothing")
        _row, token = services.token_create(user=user, name=name)
        self.stdout.write(token)
