"""Synthetic submitters: the files plans, counties, the dental program and CAIR2 really send,
for one shared synthetic population, with identity noise and clinical content (docs/synthetic-data.md).
"""

from __future__ import annotations

from phmx.synth.config import ClinicalRates, NoiseRates, PopulationRates, SynthConfig
from phmx.synth.generator import SynthSummary, generate
from phmx.synth.layouts import FEEDS, LAYOUTS

__all__ = ["FEEDS", "LAYOUTS", "ClinicalRates", "NoiseRates", "PopulationRates", "SynthConfig", "SynthSummary",
           "generate"]
