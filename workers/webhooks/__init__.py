"""The webhook dispatcher: fan events out to endpoints, then deliver them, signed."""
