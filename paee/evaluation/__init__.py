"""Official DocRED metrics (F1, Ign F1) and Rela."""
