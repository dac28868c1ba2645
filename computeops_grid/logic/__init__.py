"""The work behind every CLI command, as plain functions over the store and backends."""
