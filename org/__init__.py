"""The organisation directory: departments, people, roles, platform accounts and sites.

`org.model.Org` is an immutable in-memory snapshot with the lookups the approval engine
needs; it does no I/O. Loading/validating YAML lives in `org.loader`; rows in `storage`.
"""
