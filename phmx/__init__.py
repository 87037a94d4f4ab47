"""phmx: the statewide population health management data-sharing hub.

The core package: settings, the Spark engine, the lakehouse (table contracts and Delta
operations), storage (local directories or S3), errors and logging. Stages live in ``jobs/``,
consent in ``consent/``, de-identification in ``privacy/``, feed specs in ``mappings/``.
"""

__version__ = "0.1.0"
