"""Captum adapters over the sigma engine."""

from captum_sigma.attr.layer_sigma import LayerSigmaAttribution
from captum_sigma.attr.sigma import SigmaAttribution

__all__ = ["LayerSigmaAttribution", "SigmaAttribution"]
