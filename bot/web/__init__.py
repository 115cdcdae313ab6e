"""The web edge: REST API, pages, middleware, health and metrics endpoints. Calls services only."""
