"""``runserver`` (with static files) that answers kept-alive connections without delay.

Django's development server writes headers and body in two sends; with Nagle's algorithm
on, a browser's kept-alive connection then waits for a delayed ACK (~40 ms) on every
request (python/cpython#108736). ``make demo`` serves with this command.
"""

from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.servers import basehttp


class Command(StaticRunserver):
    def inner_run(self, *args: Any, **options: Any) -> None:
        basehttp.WSGIRequestHandler.disable_nagle_algorithm = True
        super().inner_run(*args, **options)
