"""RNN Shape Explorer: see shapes, padding and masks inside recurrent networks."""

__version__ = "0.1.0"
