"""Keep ``agent_search`` current: one row per AgentVersion, with its Agent's text and an embedding
(``ranked_index`` follows the table into memory for search).

Embeddings come from wordllama, whose weights ship inside its wheel; its loader expects the
tokenizer file (also shipped) under ``<cache>/tokenizers``, so we point it there and never
download anything.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import psycopg

WORDLLAMA_TOKENIZER = "l2_supercat_tokenizer_config.json"


class Embedder:
    """Text to 256-dimensional unit vectors with wordllama, loaded from the installed wheel only."""

    def __init__(self, cache_dir: Path | None = None):
        import wordllama
        from wordllama import WordLlama

        cache = cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
            "greenlang-registry" / "wordllama"
        tokenizers = cache / "tokenizers"
        tokenizers.mkdir(parents=True, exist_ok=True)
        shipped = Path(wordllama.__file__).parent / "tokenizers" / WORDLLAMA_TOKENIZER
        target = tokenizers / WORDLLAMA_TOKENIZER
        if not target.exists():
            target.symlink_to(shipped)
        self._model = WordLlama.load(cache_dir=cache, disable_download=True)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._model.embed(texts, norm=True)]


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    return Embedder()


def _text(agent: dict[str, Any] | None, version: dict[str, Any]) -> dict[str, Any]:
    spec = (agent or {}).get("spec") or {}
    capabilities = version["spec"].get("capabilities") or []
    return {
        "display_name": spec.get("displayName") or "",
        "description": spec.get("description") or "",
        "domain": spec.get("domain") or "",
        "type": spec.get("type"),
        "tags": spec.get("tags") or [],
        # Without its Agent (not mirrored yet, or deleted) a version's visibility is unknown: the
        # narrowest, so that a private agent's versions are never shown tenant-wide meanwhile.
        "visibility": spec.get("visibility") or ("tenant" if agent else "private"),
        "capability_names": " ".join(c["name"] for c in capabilities),
        "capability_text": " ".join(c.get("description") or "" for c in capabilities),
    }


def semantic_text(fields: dict[str, Any], agent_name: str) -> str:
    return ". ".join(filter(None, [fields["display_name"], agent_name.replace("-", " "), fields["description"],
                                   fields["domain"].replace(".", " "), " ".join(fields["tags"]),
                                   fields["capability_names"].replace("-", " "), fields["capability_text"]]))


INSERT = """
INSERT INTO agent_search (uid, namespace, agent, version, state, domain, type, tags, visibility, tenant,
                          display_name, description, capabilities, search_text, document, embedding)
VALUES (%(uid)s, %(namespace)s, %(agent)s, %(version)s, %(state)s, %(domain)s, %(type)s, %(tags)s, %(visibility)s,
        tenant_of_namespace(%(namespace)s), %(display_name)s, %(description)s, %(capabilities)s, %(search_text)s,
        setweight(to_tsvector('english', %(name_text)s), 'A')
        || setweight(to_tsvector('english', %(tag_text)s), 'B')
        || setweight(to_tsvector('english', %(body_text)s), 'C'),
        %(embedding)s)
"""


def refresh(cur: psycopg.Cursor[Any], namespace: str, agent_name: str, embedder: Embedder,
            changed: set[str] | None = None) -> None:
    """Rebuild the rows of one agent's versions from the mirrored objects: those whose uids are
    ``changed`` (a version's row depends only on it and its Agent), or all of them (``None``)."""
    row = cur.execute("SELECT body FROM registry_objects WHERE kind = 'Agent' AND namespace = %s AND name = %s "
                      "AND NOT deleted", (namespace, agent_name)).fetchone()
    agent = row[0] if row else None
    if changed is None:
        versions = [r[0] for r in cur.execute(
            "SELECT body FROM registry_objects WHERE kind = 'AgentVersion' AND namespace = %s AND NOT deleted "
            "AND body -> 'spec' ->> 'agent' = %s", (namespace, agent_name))]
        cur.execute("DELETE FROM agent_search WHERE namespace = %s AND agent = %s", (namespace, agent_name))
    else:
        versions = [r[0] for r in cur.execute(
            "SELECT body FROM registry_objects WHERE uid = ANY(%s::uuid[]) AND kind = 'AgentVersion' AND NOT deleted "
            "AND body -> 'spec' ->> 'agent' = %s", (sorted(changed), agent_name))]
        cur.execute("DELETE FROM agent_search WHERE uid = ANY(%s::uuid[])", (sorted(changed),))
    if not versions:
        return
    per_version = [_text(agent, v) for v in versions]
    embeddings = embedder.embed([semantic_text(f, agent_name) for f in per_version])
    for version, f, embedding in zip(versions, per_version, embeddings):
        cur.execute(INSERT, insert_parameters(version["metadata"]["uid"], namespace, agent_name,
                                               version["spec"]["version"], (version.get("status") or {}).get("state"),
                                               f, embedding))


def insert_parameters(uid: str, namespace: str, agent_name: str, version: str, state: str | None,
                      f: dict[str, Any], embedding: list[float]) -> dict[str, Any]:
    """The parameters of ``INSERT`` for one version (also how `python -m bench search` seeds rows)."""
    return {
        "uid": uid, "namespace": namespace, "agent": agent_name, "version": version, "state": state,
        "domain": f["domain"], "type": f["type"], "tags": f["tags"], "visibility": f["visibility"],
        "display_name": f["display_name"], "description": f["description"],
        "capabilities": f"{f['capability_names']} {f['capability_text']}".strip(),
        "search_text": " ".join([agent_name, f["display_name"], f["domain"], " ".join(f["tags"]),
                                 f["capability_names"], f["description"]]),
        "name_text": f"{agent_name.replace('-', ' ')} {f['display_name']}",
        "tag_text": f"{f['domain'].replace('.', ' ')} {' '.join(f['tags'])} "
                    f"{f['capability_names'].replace('-', ' ')}",
        "body_text": f"{f['description']} {f['capability_text']}",
        "embedding": embedding,
    }


def retenant(cur: psycopg.Cursor[Any]) -> None:
    """TenantPolicies changed: re-derive every row's tenant."""
    cur.execute("UPDATE agent_search SET tenant = tenant_of_namespace(namespace) "
                "WHERE tenant IS DISTINCT FROM tenant_of_namespace(namespace)")
