"""A client for sil-server (Stateful Inference Lab), standard library only.

    from sil_client import Client, SilHTTPError
    c = Client("http://127.0.0.1:8000", token="s3cr3t")
    c.predict([[1, 1, 1, 1] + [0] * 28])      # {"prediction": ..., "cache_hit": ...}
    c.disable_cache()                          # admin calls send the bearer token

Command line: python3 -m sil_client --help
"""

from .client import Client, SilConnectionError, SilError, SilHTTPError

__all__ = ["Client", "SilError", "SilHTTPError", "SilConnectionError"]
__version__ = "0.1.0"
