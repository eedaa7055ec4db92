"""lrid_generate: train networks with SGDM, Adam, FA and IA and record observables."""

__version__ = "0.1.0"
