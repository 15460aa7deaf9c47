"""Test-only index housekeeping: empty the test index between tests, drop it after the session."""

from core.search import es_client
from tracker.documents import index_alias, index_pattern, template_name


def index_drop() -> None:
    """Delete every index behind the alias (or matching its pattern) and the template."""
    es = es_client()
    alias = index_alias()
    patterns = f"{index_pattern()},{alias}-v*"  # the months, and the layout before them
    names = set(es.indices.get(index=patterns, allow_no_indices=True, expand_wildcards="all"))
    if es.indices.exists_alias(name=alias):
        names |= set(es.indices.get_alias(name=alias))
    # Names, not a wildcard: action.destructive_requires_name refuses wildcard deletes.
    for name in sorted(names):
        es.indices.delete(index=name, ignore_unavailable=True)
    if es.indices.exists_index_template(name=template_name()):
        es.indices.delete_index_template(name=template_name())


def index_clear() -> None:
    """Delete every document and refresh, leaving an empty index (used between tests)."""
    es = es_client()
    alias = index_alias()
    # The core-only server has no _delete_by_query (it lives in the reindex module), so
    # delete by id. Refresh first: a search only sees what a refresh made visible.
    while True:
        es.indices.refresh(index=alias)
        hits = es.search(index=alias, size=10_000, source=False, sort=["_doc"])["hits"]["hits"]
        if not hits:
            return
        operations = [{"delete": {"_index": hit["_index"], "_id": hit["_id"]}} for hit in hits]
        es.bulk(operations=operations)
