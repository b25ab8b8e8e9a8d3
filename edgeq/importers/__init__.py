"""Importers turn users' models into a FloatGraph (NHWC, batch-norm folded) for the packer."""
