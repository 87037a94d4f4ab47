"""The hub's front door: a web portal and JSON API for submitters, recipients, auditors, operators.

``phmx serve`` runs :func:`phmx.portal.app.create_app` under uvicorn on 127.0.0.1. Who may do
what is data: organisations and their kinds in a YAML file (:mod:`phmx.portal.directory`), the
rule of every route in :mod:`phmx.portal.access`. Views reuse the code behind ``phmx
submissions``, ``phmx feeds`` and ``phmx audit`` (:mod:`phmx.portal.views`).
"""
