"""A minimal Django project in one file: contrib.auth with BCryptPasswordHasher (cost 12),
database sessions, three JSON views for the HTTP figures, and Django's admin (its user
list is the console figure's peer).

Runs inside bench/.venv-django only (started by bench/peers.py):

    python django_app.py seed USER:PASSWORD ...     # migrate, create users (one inactive;
                                                    # names starting "admin" are superusers)
    python django_app.py authenticate ROUNDS        # authenticate() vs bcrypt.checkpw, JSON
    gunicorn django_app:application                 # serve POST /login, GET /me, GET /ping,
                                                    # and the admin at /admin/

``PEER_DATABASE_PATH`` names the SQLite file.
"""

from __future__ import annotations

import json
import os
import sys
import time

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only-secret-key-not-for-production-use-0123456789",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        # What the admin needs besides sessions and auth (its system checks say so); the
        # figures only GET, so no CSRF middleware.
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    STATIC_URL="/static/",
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("PEER_DATABASE_PATH", "django_bench.db"),
            "OPTIONS": {"timeout": 10},
        }
    },
    PASSWORD_HASHERS=["django.contrib.auth.hashers.BCryptPasswordHasher"],
    USE_TZ=True,
)
django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth import authenticate, login  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


def login_view(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "method not allowed"}, status=405)
    body = json.loads(request.body or b"{}")
    user = authenticate(request, username=body.get("username"), password=body.get("password"))
    if user is None:
        return JsonResponse({"detail": "invalid credentials"}, status=401)
    login(request, user)
    return JsonResponse({"id": user.pk, "username": user.username})


def me_view(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "not signed in"}, status=401)
    return JsonResponse({"id": request.user.pk, "username": request.user.get_username()})


def ping_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("login", login_view),
    path("me", me_view),
    path("ping", ping_view),
    path("admin/", admin.site.urls),
]
application = get_wsgi_application()


def seed(pairs: list[str]) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for pair in pairs:
        name, _, password = pair.partition(":")
        if name.startswith("admin"):
            User.objects.create_superuser(name, password=password)
        else:
            User.objects.create_user(name, password=password, is_active=not name.startswith("gone"))


def measure_authenticate(rounds: int) -> dict[str, dict[str, list[float]]]:
    """authenticate() per path, interleaved with one raw bcrypt.checkpw, like
    bench/authenticate.py does for studio-auth: each call's whole time ("whole") and the
    time it spent outside bcrypt ("added"). Needs users alice and gone (inactive)."""
    import bcrypt

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bcrypt_clock import BcryptClock

    clock = BcryptClock(bcrypt)  # Django's hasher calls bcrypt.hashpw through the module
    password = "a long and quite ordinary passphrase"
    stored = bcrypt.hashpw(password.encode(), bcrypt.gensalt(12))
    paths = {
        "success": ("alice", password),
        "wrong password": ("alice", password + "!"),
        "unknown user": ("nobody", password),
        "inactive user": ("gone", password),
    }
    whole: dict[str, list[float]] = {"raw checkpw": [], **{k: [] for k in paths}}
    added: dict[str, list[float]] = {k: [] for k in paths}
    authenticate(None, username="alice", password=password)  # warm up
    for _ in range(rounds):
        start = time.perf_counter()
        clock.raw_checkpw(password.encode(), stored)
        whole["raw checkpw"].append(time.perf_counter() - start)
        for name, (user, pw) in paths.items():
            spent, inside = clock.measure(
                lambda u=user, p=pw: authenticate(None, username=u, password=p)
            )
            whole[name].append(spent)
            added[name].append(spent - inside)
    return {"whole": whole, "added": added}


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "seed":
        seed(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "authenticate":
        print(json.dumps(measure_authenticate(int(sys.argv[2]))))
    else:
        sys.exit(__doc__)
