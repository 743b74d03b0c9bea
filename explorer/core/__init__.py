"""The compute core: no Qt here; TensorFlow is imported lazily inside functions."""

import os

# TensorFlow's C++ start-up logging is noise for users; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
