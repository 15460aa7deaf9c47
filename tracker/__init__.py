"""The tracker service: stores messages in Elasticsearch, searches and counts them."""
