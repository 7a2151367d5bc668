"""The web app: blinded review and correction with roles and an append-only audit trail.

FastAPI over :mod:`hairtrial.store`, server-rendered Jinja2 pages with a little vanilla
JavaScript (``web/static``, nothing loaded from the internet). Build it with
:func:`hairtrial.web.main.create_app`; ``hairtrial serve --db URL`` runs it under uvicorn.
Importing this package does not import FastAPI.
"""
