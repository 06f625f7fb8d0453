"""The WSGI app as the demo serves it: Django plus its static files, under gunicorn.

``make demo`` runs a few gunicorn processes instead of the single-process development
server, so annotators voting at once do not queue behind one interpreter lock. A real
deployment serves static files from its web server (``collectstatic``) and uses
``sbs.wsgi``.
"""

import os

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbs.settings")
application = StaticFilesHandler(get_wsgi_application())
