"""REST API of the platform (`uvicorn etl_platform.api:app`); OpenAPI at /docs and /openapi.json.

Importing this module reads no setting and opens no connection: the warehouse URL is read
when the app starts.
"""

from etl_platform.api.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
