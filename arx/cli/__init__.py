"""The ``arx`` command line."""
