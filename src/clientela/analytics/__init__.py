"""Customer analytics: pure functions over NumPy arrays (CLV, and later RFM and cohorts)."""
