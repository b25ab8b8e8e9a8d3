"""Python mirror of the format ids, scale kinds, layouts and block constants of edgeq_blob.h.

Names are the C names without `EDGEQ_`. tools/check_abi.py compares every upper-case integer in
this module with the header, so only header constants may live here.
"""

ALIGN = 64  # every region of a packed tensor starts 64-byte aligned inside its payload

FMT_F32 = 1
FMT_F16 = 2
FMT_I32 = 3
FMT_I8 = 4
FMT_U8 = 5
FMT_T2 = 16
FMT_T158 = 17
FMT_B1 = 18
FMT_Q4 = 19

T2_BLOCK = 256
T2_CODE_BYTES = 64
T158_BLOCK = 256
T158_CODE_BYTES = 52
B1_BLOCK = 64
B1_CODE_BYTES = 8
I8_BLOCK = 16
I8_SCALE_BLOCK = 32

SCALE_NONE = 0
SCALE_ROW = 1
SCALE_BLOCK = 2

LAYOUT_ROW_MAJOR = 0
LAYOUT_ROWS4 = 1  # T2 and Q4: 4 rows interleaved in 4-byte words (docs/formats.md)
ROWS4_GROUP = 4
