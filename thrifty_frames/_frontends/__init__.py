"""Front ends: the only code that imports pandas or Polars."""
