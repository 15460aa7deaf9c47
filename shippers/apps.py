"""App config for the shippers' doors."""

from django.apps import AppConfig


class ShippersConfig(AppConfig):
    """The Elasticsearch-compatible bulk API and Loki's push API."""

    name = "shippers"
