"""Agent identity: agents, their keys (stored only as keyed hashes) and short-lived tokens.

hashing.py       HMAC-SHA256 of keys with a server secret; new keys; persisted secrets
store.py         the KeyStore Protocol and its records
sql_store.py     the SQL both backends share (one schema, upserts, transactions)
sqlite_store.py  the embedded default, <data_dir>/keys.sqlite
postgres_store.py  the store replicas share (key_store.database_url)
directory.py     the request path's in-memory, refreshed view: header -> AgentIdentity
tokens.py        POST /v1/auth/token: agent key -> signed JWT
declared.py      config `agents:` versus the store: the plan `keys apply` and startup use
admin.py         key and agent lifecycle shared by the admin API and the CLI
service.py       opens all of the above from the config
"""
