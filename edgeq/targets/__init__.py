"""Target registry and the configs generated from it: NEON builds, MCU fits, FPGA cost models."""
