"""Tests of the syslog listener against the real Redis, Elasticsearch and senders."""
