-- Search ranks in the mirror's memory (ranked_index.py); no query of the product reads these two
-- GIN indexes any more, yet every search row written paid their upkeep. `python -m bench search`
-- builds its own for its plain-SQL baseline.
DROP INDEX IF EXISTS agent_search_document;
DROP INDEX IF EXISTS agent_search_trigrams;
