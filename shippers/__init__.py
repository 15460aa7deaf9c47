"""The shippers' doors: Elasticsearch's bulk API and Loki's push API into the push pipeline."""
