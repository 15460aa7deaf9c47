"""The Elasticsearch side of the tracker: the message mapping and its index behind an alias.

Every read and write goes through the alias `settings.TRACKER_INDEX_ALIAS`. The concrete index
is `<alias>-v<N>`, created from an index template, so a new mapping version can be built beside
the old one and the alias swapped without the callers noticing.
"""

from django.conf import settings
from elasticsearch import BadRequestError
from elasticsearch_dsl import (
    Boolean,
    Date,
    Document,
    InnerDoc,
    Integer,
    Keyword,
    MetaField,
    Object,
    Text,
)

from core.search import es_client
from tracker.grams import SHORT_GRAMS_FIELD, TRIGRAM_FIELD

INDEX_VERSION = 1


class Attempt(InnerDoc):
    """One draw of the validator: the number and when it was drawn."""

    random_number = Integer()
    at = Date()


class MessageDocument(Document):
    """A tracked message; `message_id` is also the document's `_id`."""

    message_id = Keyword()
    user_id = Keyword()
    category = Keyword()
    request_id = Keyword()
    created_time = Date()
    tracked_time = Date()
    request_count = Integer()
    user_message = Text(analyzer="standard")
    attempts = Object(Attempt)
    random_numbers = Integer()
    # From OpenTelemetry logs (POST /v1/logs); absent on other messages.
    severity_text = Keyword()
    severity_number = Integer()
    service_name = Keyword()
    trace_id = Keyword()
    span_id = Keyword()
    attributes = Keyword()  # "key:value" strings, so one attribute filters a search
    truncated = Boolean()
    # Search-only fields (see tracker/grams.py): no scoring, so no norms; never read back, so
    # kept out of _source. Phrases need positions; single-token lookups need only documents.
    message_grams = Text(analyzer="standard", index_options="positions", norms=False)
    message_short_grams = Text(analyzer="standard", index_options="docs", norms=False)

    class Meta:
        # A field nobody mapped is a bug upstream: refuse it rather than guess its type.
        dynamic = MetaField("strict")
        source = MetaField(excludes=[TRIGRAM_FIELD, SHORT_GRAMS_FIELD])


def index_alias() -> str:
    """The alias every read and write goes through."""
    return settings.TRACKER_INDEX_ALIAS


def template_name() -> str:
    """The index template every versioned index is created from."""
    return f"{index_alias()}-template"


def _index_settings() -> dict:
    return {
        # One node, modest volume: one shard keeps sorting and counting cheap.
        "number_of_shards": 1,
        "number_of_replicas": settings.TRACKER_INDEX_REPLICAS,
        "refresh_interval": settings.TRACKER_REFRESH_INTERVAL,
    }


def index_current() -> str | None:
    """The concrete index behind the alias, or None when the alias does not exist."""
    es = es_client()
    if not es.indices.exists_alias(name=index_alias()):
        return None
    return sorted(es.indices.get_alias(name=index_alias()))[-1]


def index_setup() -> str:
    """Create or update the template, the versioned index and the alias; return the index name."""
    es = es_client()
    alias = index_alias()
    mapping = MessageDocument._doc_type.mapping.to_dict()
    es.indices.put_index_template(
        name=template_name(),
        index_patterns=[f"{alias}-v*"],
        priority=200,
        template={"settings": _index_settings(), "mappings": mapping},
    )
    current = index_current()
    if current is not None:
        # Additive mapping changes reach the live index; a conflicting one fails loudly here.
        es.indices.put_mapping(index=current, body=mapping)
        return current
    name = f"{alias}-v{INDEX_VERSION}"
    try:
        es.indices.create(index=name, aliases={alias: {"is_write_index": True}})
    except BadRequestError as exc:
        # Another process won the race to create it; the alias came with it.
        if exc.error != "resource_already_exists_exception":
            raise
    return name
