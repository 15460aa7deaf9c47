# Python Logger: one image for web (gunicorn), tail (uvicorn), qcluster and the one-shot
# migrate service.
# Build: docker compose build (or docker build -t python-logger .). Run: see docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app

# A fixed uid/gid, so volume permissions and security policies can name it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

# Dependencies first: this layer is rebuilt only when the lock changes, and pip checks every
# file against its hash there. Every pin ships a manylinux wheel for CPython 3.11, so no
# compiler is needed.
COPY requirements/base.txt requirements/base.txt
RUN pip install --require-hashes -r requirements/base.txt

COPY . .

# Static files (Swagger UI and Redoc assets included) are collected into the image and served
# by WhiteNoise. Production settings demand strong secrets and allowed hosts, so this one RUN
# gets random throwaway values inline; they are not kept in any ENV and never reach a running
# container.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    JWT_SIGNING_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput -v 0 \
    && mkdir -p var && chown app:app var

USER app

EXPOSE 8000

# web: gunicorn with 4 sync workers (WEB_WORKERS) on port 8000 (PORT). exec makes gunicorn
# PID 1, so `docker stop` reaches it and it finishes in-flight requests.
CMD ["sh", "-c", "exec gunicorn config.wsgi:application --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_WORKERS:-4} --worker-class sync --timeout 30 --graceful-timeout 10 --limit-request-line 8190"]
